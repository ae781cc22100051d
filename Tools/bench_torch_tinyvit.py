#!/usr/bin/env python3
"""PyTorch side of tinyshard-bench's TinyViT table: img/s of timm's tiny_vit_5m_224 train step (forward +
soft-target cross entropy + backward + AdamW) or inference, batch B, 2 threads. Prints one number.
Exits 2 (and tinyshard-bench prints n/a) when torch or timm is not installed; never run in CI.

timm >= 1.0 builds TinyViT without an `img_size` argument (its windows pad to any input size, and the
attention biases do not depend on it), so the resolution only sets the input's size; timm releases that
still take `img_size` get it."""
import argparse, sys, time
try:
    import torch, timm
except ImportError:
    sys.exit(2)
ap = argparse.ArgumentParser()
ap.add_argument("--resolution", type=int, default=224); ap.add_argument("--batch", type=int, default=32)
ap.add_argument("--inference", action="store_true"); ap.add_argument("--steps", type=int, default=2)
a = ap.parse_args()
torch.set_num_threads(2)
try:
    model = timm.create_model("tiny_vit_5m_224", num_classes=1000, img_size=a.resolution)
except TypeError:                     # timm 1.0.x: TinyVit.__init__() takes no img_size
    model = timm.create_model("tiny_vit_5m_224", num_classes=1000)
x = torch.randn(a.batch, 3, a.resolution, a.resolution)
target = torch.softmax(torch.randn(a.batch, 1000), -1)
opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
def step():
    if a.inference:
        model.eval()
        with torch.no_grad(): model(x)
    else:
        model.train(); opt.zero_grad()
        loss = torch.sum(-target * torch.log_softmax(model(x), -1), -1).mean()
        loss.backward(); opt.step()
step()
start = time.perf_counter()
for _ in range(a.steps): step()
print(a.batch * a.steps / (time.perf_counter() - start))
