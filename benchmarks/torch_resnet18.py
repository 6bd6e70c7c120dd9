"""ResNet18 + the paper's sequential head in PyTorch: the speed reference for training.

Written here (no torchvision) as torchvision builds resnet18, with its `fc`
replaced by the paper's head Linear(512, 512) -> ReLU -> Dropout(0.2) ->
Linear(512, n) -> LogSoftmax. Dev-only: imported by benchmarks, never by augbal.
"""

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN units with an identity or 1x1 projection shortcut."""

    def __init__(self, in_filters: int, filters: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_filters, filters, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(filters)
        self.conv2 = nn.Conv2d(filters, filters, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(filters)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = None
        if stride != 1 or in_filters != filters:
            self.shortcut = nn.Sequential(nn.Conv2d(in_filters, filters, 1, stride, bias=False),
                                          nn.BatchNorm2d(filters))

    def forward(self, x):
        identity = x if self.shortcut is None else self.shortcut(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18Classifier(nn.Module):
    """ResNet18 backbone (random init, torchvision's scheme) + the paper's head."""

    def __init__(self, num_classes: int, head_width: int = 512, dropout: float = 0.2):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                                  nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        blocks, in_filters = [], 64
        for stage, filters in enumerate((64, 128, 256, 512)):
            for index in range(2):
                blocks.append(BasicBlock(in_filters, filters, 2 if stage > 0 and index == 0 else 1))
                in_filters = filters
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(nn.Linear(512, head_width), nn.ReLU(inplace=True),
                                  nn.Dropout(dropout), nn.Linear(head_width, num_classes),
                                  nn.LogSoftmax(dim=1))
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        features = torch.flatten(self.pool(self.blocks(self.stem(x))), 1)
        return self.head(features)


def num_trainable_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
