#!/usr/bin/env python3
"""PyTorch side of tinyshard-bench's TinyViT table: img/s of timm's tiny_vit_5m_224 train step (forward +
soft-target cross entropy + backward + AdamW) or inference, batch B, 2 threads. Prints one number.
Exits 2 (and tinyshard-bench prints n/a) when torch or timm is not installed; never run in CI."""
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
model = timm.create_model("tiny_vit_5m_224", num_classes=1000, img_size=a.resolution)
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
