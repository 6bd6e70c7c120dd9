"""The Beam generation path: the same `Materializer` work, spread over Beam workers.

Returned by the builder's split generators when Beam is requested
(`tfds build ... --beam_pipeline_options=...`). Workers unpickle this module's
objects by their installed name (`augbal_datasets.augbal.beam_generate`), never the
path-loaded builder module, so they import cleanly on any runner.
"""

from collections.abc import Sequence

import apache_beam as beam

from augbal_datasets.augbal import generate
from augbal_datasets.augbal import sampling


class GenerateExamples(beam.PTransform):
    """PBegin -> (key, example) for one split; one element per original image."""

    def __init__(self, materializer: generate.Materializer,
                 groups: Sequence[tuple[str, list[sampling.ExampleSpec]]]):
        super().__init__()
        if not materializer.source.random_access:
            raise ValueError("Beam generation needs a source with random access ('manual' or "
                             "'sample'); tfds:<name> sources build without Beam")
        self._materializer = materializer
        self._groups = list(groups)

    def expand(self, pbegin):
        return (pbegin
                | "Originals" >> beam.Create(self._groups)
                # Create keeps everything on one worker; spread the (cheap) elements out.
                | "Spread" >> beam.Reshuffle()
                | "Materialize" >> beam.ParDo(_MaterializeFn(self._materializer)))


class _MaterializeFn(beam.DoFn):
    """Reads one original and yields all its examples (one decode for every copy)."""

    def __init__(self, materializer: generate.Materializer):
        super().__init__()
        self._materializer = materializer

    def process(self, group):
        source_id, specs = group
        data = self._materializer.source.read(source_id)
        yield from self._materializer.examples(source_id, data, specs)
