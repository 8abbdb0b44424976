"""A PyTorch peer for the speed benchmarks: CIFAR ResNet-32 in PyTorch eager
mode, the same network as `zoo.models.ResNet32`, trained by the same SGD step,
so that "as fast as PyTorch" is measured on this machine rather than
remembered. Optional: needs `pip install "zoo[peer]"` (torch 2.13.0, CPU).
Nothing in the library or the tests imports it otherwise.
"""

import os
import time


def _resnet(blocks_per_stage=5, widths=(16, 32, 64), classes=10):
    import torch
    from torch import nn

    class Block(nn.Module):
        """Post-activation basic block, option-A shortcut (He et al. 2016, 4.2)."""

        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.stride, self.pad = stride, cout - cin

        def forward(self, x):
            r = torch.relu(self.bn1(self.conv1(x)))
            r = self.bn2(self.conv2(r))
            shortcut = x[:, :, ::self.stride, ::self.stride] if self.stride > 1 else x
            if self.pad:
                shortcut = nn.functional.pad(shortcut, (0, 0, 0, 0, 0, self.pad))
            return torch.relu(shortcut + r)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 1, 1, bias=False),
                                      nn.BatchNorm2d(widths[0]), nn.ReLU())
            layers, cin = [], widths[0]
            for k, width in enumerate(widths):
                for j in range(blocks_per_stage):
                    layers.append(Block(cin, width, 2 if (k > 0 and j == 0) else 1))
                    cin = width
            self.stages = nn.Sequential(*layers)
            self.head = nn.Linear(widths[-1], classes)

        def forward(self, images):
            # Per-image standardisation, as the zoo models do inside.
            x = images.float()
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            std = x.std(dim=(1, 2, 3), keepdim=True).clamp_min(x[0].numel() ** -0.5)
            x = (x - mean) / std
            x = self.stages(self.stem(x))
            return self.head(x.mean(dim=(2, 3)))

    return ResNet()


def throughput(batch=128, steps=8, threads=None, bfloat16=False):
    """Training img/s of the PyTorch ResNet-32: SGD (momentum 0.9, Nesterov,
    weight decay 5e-4) steps on fixed random images, after two warm-up steps."""
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(threads or os.cpu_count())
    model = _resnet().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                                weight_decay=5e-4)
    images = torch.randint(0, 256, (batch, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (batch,))
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bfloat16):
            loss = loss_fn(model(images), labels)
        loss.backward()
        optimizer.step()
        return float(loss)

    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    seconds = (time.perf_counter() - start) / steps
    return {"framework": f"PyTorch {torch.__version__} eager", "model": "resnet-32",
            "batch": batch, "bfloat16": bfloat16, "threads": torch.get_num_threads(),
            "parameters": sum(p.numel() for p in model.parameters()),
            "step_seconds": seconds, "images_per_second": batch / seconds}
