#!/usr/bin/env python3
"""PyTorch peer of bench_train: training steps of YOLOv8n on the CPU, as Ultralytics 8.0.172
trains (its modules, v8DetectionLoss with the TaskAlignedAssigner, SGD with three parameter
groups, gradient clipping at 10, EMA), written out here so that only PyTorch is needed.

  train_peer.py [--imgsz 320] [--batch 16] [--freeze 0] [--threads 2] [--warmup 2]
                [--steps 5] [--boxes 8] [--nc 80]

One step = forward (train mode) + loss + backward + clip + SGD step + zero grad + EMA update,
on a fixed random input batch and fixed synthetic targets (data loading excluded, as on the
hotyolo side). Prints one JSON line: images/s over the timed steps, peak RSS (ru_maxrss) and
the RSS before the first step. Without torch it prints {"skipped": "..."} and exits 0.
Weights are randomly initialised (speed does not depend on their values)."""
import argparse
import json
import math
import resource
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:
    print(json.dumps({"skipped": "python3-torch not installed (scripts/install-deps.sh --bench)"}))
    sys.exit(0)


# ---- the network: Ultralytics' Conv / Bottleneck / C2f / SPPF / Detect, yolov8n scales ----
class Conv(nn.Module):
    def __init__(self, c1, c2, k=1, s=1):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, c1, c2, shortcut):
        super().__init__()
        self.cv1, self.cv2 = Conv(c1, c2, 3), Conv(c2, c2, 3)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    def __init__(self, c1, c2, n, shortcut):
        super().__init__()
        self.c = c2 // 2
        self.cv1 = Conv(c1, 2 * self.c)
        self.cv2 = Conv((2 + n) * self.c, c2)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut) for _ in range(n))

    def forward(self, x):
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c1, c2, k=5):
        super().__init__()
        c = c1 // 2
        self.cv1, self.cv2 = Conv(c1, c), Conv(4 * c, c2)
        self.m = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x):
        y = [self.cv1(x)]
        y.extend(self.m(y[-1]) for _ in range(3))
        return self.cv2(torch.cat(y, 1))


class DFL(nn.Module):
    def __init__(self, c=16):
        super().__init__()
        self.conv = nn.Conv2d(c, 1, 1, bias=False).requires_grad_(False)
        self.conv.weight.data[:] = torch.arange(c, dtype=torch.float).view(1, c, 1, 1)


class Detect(nn.Module):
    def __init__(self, nc, ch, strides=(8, 16, 32)):
        super().__init__()
        self.nc, self.reg_max, self.nl = nc, 16, len(ch)
        self.no = nc + 4 * self.reg_max
        self.stride = torch.tensor(strides, dtype=torch.float)
        c2, c3 = max(16, ch[0] // 4, 4 * self.reg_max), max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * self.reg_max, 1))
                                 for x in ch)
        self.cv3 = nn.ModuleList(nn.Sequential(Conv(x, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1)) for x in ch)
        self.dfl = DFL(self.reg_max)  # not used in training; frozen as Ultralytics' '.dfl'

    def forward(self, xs):
        return [torch.cat((self.cv2[i](x), self.cv3[i](x)), 1) for i, x in enumerate(xs)]

    def bias_init(self):
        for a, b, s in zip(self.cv2, self.cv3, self.stride):
            a[-1].bias.data[:] = 1.0
            b[-1].bias.data[: self.nc] = math.log(5 / self.nc / (640 / s) ** 2)


class YOLOv8n(nn.Module):
    """yolov8.yaml at scale n (depth 0.33, width 0.25): model.0 .. model.22 as Ultralytics."""

    def __init__(self, nc=80):
        super().__init__()
        m = [Conv(3, 16, 3, 2), Conv(16, 32, 3, 2), C2f(32, 32, 1, True), Conv(32, 64, 3, 2), C2f(64, 64, 2, True),
             Conv(64, 128, 3, 2), C2f(128, 128, 2, True), Conv(128, 256, 3, 2), C2f(256, 256, 1, True),
             SPPF(256, 256), nn.Upsample(None, 2, "nearest"), nn.Identity(), C2f(384, 128, 1, False),
             nn.Upsample(None, 2, "nearest"), nn.Identity(), C2f(192, 64, 1, False), Conv(64, 64, 3, 2),
             nn.Identity(), C2f(192, 128, 1, False), Conv(128, 128, 3, 2), nn.Identity(), C2f(384, 256, 1, False),
             Detect(nc, (64, 128, 256))]
        self.model = nn.Sequential(*m)  # state_dict names model.N.* as Ultralytics
        self.model[-1].bias_init()

    def forward(self, x):
        m = self.model
        x = m[0](x); x = m[1](x); x = m[2](x); x = m[3](x); p4 = x = m[4](x)
        x = m[5](x); p6 = x = m[6](x); x = m[7](x); x = m[8](x); p9 = x = m[9](x)
        x = m[12](torch.cat((m[10](x), p6), 1)); p12 = x
        p15 = x = m[15](torch.cat((m[13](x), p4), 1))
        p18 = x = m[18](torch.cat((m[16](x), p12), 1))
        p21 = m[21](torch.cat((m[19](x), p9), 1))
        return m[22]([p15, p18, p21])


# ---- v8DetectionLoss + TaskAlignedAssigner (ultralytics/utils/loss.py, tal.py, 8.0.172) ----
def bbox_iou_ciou(b1, b2, eps=1e-7):
    b1_x1, b1_y1, b1_x2, b1_y2 = b1.chunk(4, -1)
    b2_x1, b2_y1, b2_x2, b2_y2 = b2.chunk(4, -1)
    w1, h1 = b1_x2 - b1_x1, b1_y2 - b1_y1 + eps
    w2, h2 = b2_x2 - b2_x1, b2_y2 - b2_y1 + eps
    inter = (b1_x2.minimum(b2_x2) - b1_x1.maximum(b2_x1)).clamp(0) * \
            (b1_y2.minimum(b2_y2) - b1_y1.maximum(b2_y1)).clamp(0)
    union = w1 * h1 + w2 * h2 - inter + eps
    iou = inter / union
    cw = b1_x2.maximum(b2_x2) - b1_x1.minimum(b2_x1)
    ch = b1_y2.maximum(b2_y2) - b1_y1.minimum(b2_y1)
    c2 = cw ** 2 + ch ** 2 + eps
    rho2 = ((b2_x1 + b2_x2 - b1_x1 - b1_x2) ** 2 + (b2_y1 + b2_y2 - b1_y1 - b1_y2) ** 2) / 4
    v = (4 / math.pi ** 2) * (torch.atan(w2 / h2) - torch.atan(w1 / h1)).pow(2)
    with torch.no_grad():
        alpha = v / (v - iou + (1 + eps))
    return iou - (rho2 / c2 + v * alpha)


class TaskAlignedAssigner:
    def __init__(self, topk=10, nc=80, alpha=0.5, beta=6.0, eps=1e-9):
        self.topk, self.nc, self.alpha, self.beta, self.eps = topk, nc, alpha, beta, eps

    @torch.no_grad()
    def __call__(self, pd_scores, pd_bboxes, anc_points, gt_labels, gt_bboxes, mask_gt):
        bs, nmax = pd_scores.shape[0], gt_bboxes.shape[1]
        na = anc_points.shape[0]
        # anchor centres strictly inside the box
        lt, rb = gt_bboxes.view(-1, 1, 4).chunk(2, 2)
        deltas = torch.cat((anc_points[None] - lt, rb - anc_points[None]), 2).view(bs, nmax, na, -1)
        mask_in_gts = deltas.amin(3).gt_(self.eps)
        # alignment metric
        m = (mask_in_gts * mask_gt).bool()
        overlaps = torch.zeros(bs, nmax, na, dtype=pd_bboxes.dtype)
        bbox_scores = torch.zeros(bs, nmax, na, dtype=pd_scores.dtype)
        i0 = torch.arange(bs).view(-1, 1).expand(-1, nmax)
        i1 = gt_labels.squeeze(-1).long()
        bbox_scores[m] = pd_scores[i0, :, i1][m]
        pd = pd_bboxes.unsqueeze(1).expand(-1, nmax, -1, -1)[m]
        gt = gt_bboxes.unsqueeze(2).expand(-1, -1, na, -1)[m]
        overlaps[m] = bbox_iou_ciou(gt, pd).squeeze(-1).clamp_(0)
        align = bbox_scores.pow(self.alpha) * overlaps.pow(self.beta)
        # top-k candidates per box
        topk_mask = mask_gt.expand(-1, -1, self.topk).bool()
        _, idx = torch.topk(align, self.topk, dim=-1, largest=True)
        idx.masked_fill_(~topk_mask, 0)
        count = torch.zeros(align.shape, dtype=torch.int8)
        ones = torch.ones_like(idx[:, :, :1], dtype=torch.int8)
        for k in range(self.topk):
            count.scatter_add_(-1, idx[:, :, k:k + 1], ones)
        count.masked_fill_(count > 1, 0)
        mask_pos = count.to(align.dtype) * mask_in_gts * mask_gt
        # one box per anchor: highest overlap
        fg = mask_pos.sum(-2)
        if fg.max() > 1:
            multi = (fg.unsqueeze(1) > 1).expand(-1, nmax, -1)
            is_max = torch.zeros(mask_pos.shape, dtype=mask_pos.dtype)
            is_max.scatter_(1, overlaps.argmax(1).unsqueeze(1), 1)
            mask_pos = torch.where(multi, is_max, mask_pos).float()
            fg = mask_pos.sum(-2)
        gt_idx = mask_pos.argmax(-2)
        # targets
        gt_idx = gt_idx + torch.arange(bs)[:, None] * nmax
        labels = gt_labels.long().flatten()[gt_idx].clamp_(0)
        t_boxes = gt_bboxes.view(-1, 4)[gt_idx]
        t_scores = torch.zeros(bs, na, self.nc, dtype=torch.int64)
        t_scores.scatter_(2, labels.unsqueeze(-1), 1)
        t_scores = torch.where(fg[:, :, None].repeat(1, 1, self.nc) > 0, t_scores, 0)
        align = align * mask_pos
        pos_align = align.amax(-1, keepdim=True)
        pos_ovl = (overlaps * mask_pos).amax(-1, keepdim=True)
        norm = (align * pos_ovl / (pos_align + self.eps)).amax(-2).unsqueeze(-1)
        return t_boxes, t_scores * norm, fg.bool()


class V8DetectionLoss:
    def __init__(self, det, box=7.5, cls=0.5, dfl=1.5):
        self.nc, self.reg_max, self.no, self.stride = det.nc, det.reg_max, det.no, det.stride
        self.hyp = (box, cls, dfl)
        self.assigner = TaskAlignedAssigner(10, self.nc, 0.5, 6.0)
        self.proj = torch.arange(self.reg_max, dtype=torch.float)

    def __call__(self, feats, targets):
        """feats: head maps; targets: (n, 6) rows (image, class, cx, cy, w, h) normalised."""
        bs = feats[0].shape[0]
        pd_distri, pd_scores = torch.cat([x.view(bs, self.no, -1) for x in feats], 2).split(
            (4 * self.reg_max, self.nc), 1)
        pd_scores = pd_scores.permute(0, 2, 1).contiguous()
        pd_distri = pd_distri.permute(0, 2, 1).contiguous()
        imgsz = torch.tensor(feats[0].shape[2:], dtype=torch.float) * self.stride[0]
        # anchors: cell centres per level
        pts, strides = [], []
        for x, s in zip(feats, self.stride):
            h, w = x.shape[2:]
            sy, sx = torch.meshgrid(torch.arange(h) + 0.5, torch.arange(w) + 0.5, indexing="ij")
            pts.append(torch.stack((sx, sy), -1).view(-1, 2))
            strides.append(torch.full((h * w, 1), float(s)))
        anc, st = torch.cat(pts), torch.cat(strides)
        # targets -> (bs, max per image, 5) cls + xyxy pixels
        i = targets[:, 0].long()
        counts = torch.bincount(i, minlength=bs)
        out = torch.zeros(bs, int(counts.max()), 5)
        for j in range(bs):
            sel = targets[i == j, 1:]
            if len(sel):
                out[j, :len(sel)] = sel
        xywh = out[..., 1:5] * imgsz[[1, 0, 1, 0]]
        out[..., 1:5] = torch.cat((xywh[..., :2] - xywh[..., 2:] / 2, xywh[..., :2] + xywh[..., 2:] / 2), -1)
        gt_labels, gt_bboxes = out.split((1, 4), 2)
        mask_gt = gt_bboxes.sum(2, keepdim=True).gt_(0)
        # DFL decode: expected distance per side
        b, a, c = pd_distri.shape
        dist = pd_distri.view(b, a, 4, c // 4).softmax(3).matmul(self.proj)
        lt, rb = dist.chunk(2, -1)
        pd_bboxes = torch.cat((anc - lt, anc + rb), -1)
        t_boxes, t_scores, fg = self.assigner(pd_scores.detach().sigmoid(), pd_bboxes.detach() * st, anc * st,
                                              gt_labels, gt_bboxes, mask_gt)
        tss = max(t_scores.sum(), 1)
        loss_cls = F.binary_cross_entropy_with_logits(pd_scores, t_scores.float(), reduction="none").sum() / tss
        loss_box = loss_dfl = torch.zeros(())
        if fg.sum():
            t_boxes = t_boxes / st
            weight = t_scores.sum(-1)[fg].unsqueeze(-1)
            iou = bbox_iou_ciou(pd_bboxes[fg], t_boxes[fg])
            loss_box = ((1.0 - iou) * weight).sum() / tss
            x1y1, x2y2 = t_boxes.chunk(2, -1)
            ltrb = torch.cat((anc - x1y1, x2y2 - anc), -1).clamp_(0, self.reg_max - 1 - 0.01)[fg]
            tl = ltrb.long()
            wl = tl + 1 - ltrb
            pdist = pd_distri[fg].view(-1, self.reg_max)
            ce_l = F.cross_entropy(pdist, tl.view(-1), reduction="none").view(tl.shape)
            ce_r = F.cross_entropy(pdist, (tl + 1).view(-1), reduction="none").view(tl.shape)
            loss_dfl = ((ce_l * wl + ce_r * (1 - wl)).mean(-1, keepdim=True) * weight).sum() / tss
        box, cls, dfl = self.hyp
        parts = (loss_box * box, loss_cls * cls, loss_dfl * dfl)
        self.items = [float(v) for v in parts]  # Ultralytics' loss_items: box, cls, dfl
        return sum(parts) * bs, int(fg.sum())


# ---- the trainer's step: build_optimizer groups, optimizer_step, ModelEMA ----
def build_sgd(model, lr=0.01, momentum=0.937, decay=5e-4):
    g = [], [], []  # weights (decay), BN weights, biases
    for mod in model.modules():
        for name, p in mod.named_parameters(recurse=False):
            if name == "bias":
                g[2].append(p)
            elif isinstance(mod, nn.BatchNorm2d):
                g[1].append(p)
            else:
                g[0].append(p)
    opt = torch.optim.SGD(g[2], lr=lr, momentum=momentum, nesterov=True)
    opt.add_param_group({"params": g[0], "weight_decay": decay})
    opt.add_param_group({"params": g[1], "weight_decay": 0.0})
    return opt


class EMA:
    def __init__(self, model):
        import copy
        self.ema = copy.deepcopy(model).eval()
        for p in self.ema.parameters():
            p.requires_grad_(False)
        self.updates = 0

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        d = 0.9999 * (1 - math.exp(-self.updates / 2000))
        msd = model.state_dict()
        for k, v in self.ema.state_dict().items():
            if v.dtype.is_floating_point:
                v *= d
                v += (1 - d) * msd[k].detach()


def synthetic_targets(batch, boxes, nc, seed=0):
    """boxes per image, centres and sizes spread over the image, fixed by the seed; the same
    LCG as bench_train.c, so both sides train on the same targets."""
    rows, s = [], seed * 2654435761 % (1 << 32)

    def u():
        nonlocal s
        s = (s * 1664525 + 1013904223) % (1 << 32)
        return (s >> 8) / 16777216.0

    for i in range(batch):
        for _ in range(boxes):
            c = int(u() * nc) % nc
            w, h = 0.05 + 0.4 * u(), 0.05 + 0.4 * u()
            cx, cy = w / 2 + (1 - w) * u(), h / 2 + (1 - h) * u()
            rows.append([i, c, cx, cy, w, h])
    return torch.tensor(rows, dtype=torch.float)


def read_safetensors(path):
    """{name: tensor} of a safetensors file of F32 / I64 tensors (no package needed)."""
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        head, body = json.loads(f.read(n)), f.read()
    out = {}
    for k, v in head.items():
        if k != "__metadata__":
            a, b = v["data_offsets"]
            dt = {"F32": torch.float32, "I64": torch.int64}[v["dtype"]]
            out[k] = torch.frombuffer(bytearray(body[a:b]), dtype=dt).view(v["shape"])
    return out


def read_npy_f32(path):
    with open(path, "rb") as f:
        assert f.read(6) == b"\x93NUMPY"
        major = f.read(2)[0]
        n = int.from_bytes(f.read(2 if major == 1 else 4), "little")
        head = eval(f.read(n).decode("latin1"))  # the npy header is a Python dict literal
        assert head["descr"] == "<f4" and not head["fortran_order"]
        return torch.frombuffer(bytearray(f.read()), dtype=torch.float32).view(head["shape"])


def check_loss(assets):
    """The loss of this file on Ultralytics' own head outputs and targets against the loss it
    computed (reference/train/, MANIFEST.md): checks that the peer runs the real v8 loss."""
    ref = {r["mode"]: r for r in json.load(open(f"{assets}/reference/train/yolov8n_coco8_320_loss.json"))}
    targets = read_npy_f32(f"{assets}/reference/train/coco8_train_320_targets.npy")
    crit, worst = V8DetectionLoss(Detect(80, (64, 128, 256))), 0.0
    for mode in ("eval", "train"):
        head = read_safetensors(f"{assets}/reference/train/yolov8n_coco8_320_head_{mode}.safetensors")
        total, n_fg = crit([head["p3"], head["p4"], head["p5"]], targets)
        r = ref[mode]
        got = dict(zip(("box", "cls", "dfl"), crit.items), loss_sum_times_batch=float(total))
        for k, v in got.items():
            worst = max(worst, abs(v - r[k]) / abs(r[k]))
        print(f"{mode}: " + ", ".join(f"{k} {v:.6f} (Ultralytics {r[k]:.6f})" for k, v in got.items()) + f", fg {n_fg}")
    print(f"worst relative difference {worst:.2e}")
    return 0 if worst < 1e-4 else 1


def peer_version():
    """torch.__version__, and the Debian package's version when it is Debian's (1.13.1+dfsg
    reports itself as 1.13.0a0)."""
    v = f"PyTorch {torch.__version__}"
    if torch.__file__.startswith("/usr/lib/python3/"):
        import subprocess
        try:
            deb = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "python3-torch"], capture_output=True,
                                 text=True, timeout=10).stdout.strip()
            v += f" (Debian python3-torch {deb})" if deb else ""
        except (OSError, subprocess.SubprocessError):
            pass
    return v + (", oneDNN" if torch.backends.mkldnn.is_available() else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--freeze", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--boxes", type=int, default=8)
    ap.add_argument("--nc", type=int, default=80)
    ap.add_argument("--check-loss", metavar="ASSETS", help="compare the loss with Ultralytics' and exit")
    a = ap.parse_args()
    if a.check_loss:
        sys.exit(check_loss(a.check_loss))
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = YOLOv8n(a.nc)
    frozen = [f"model.{x}." for x in range(a.freeze)] + [".dfl"]  # trainer.py: freeze_layer_names
    for k, v in model.named_parameters():
        v.requires_grad = not any(f in k for f in frozen)
    model.train()
    det = model.model[-1]
    crit = V8DetectionLoss(det)
    opt = build_sgd(model)
    ema = EMA(model)
    params = [p for p in model.parameters() if p.requires_grad]
    x = torch.rand(a.batch, 3, a.imgsz, a.imgsz, generator=torch.Generator().manual_seed(1))
    targets = synthetic_targets(a.batch, a.boxes, a.nc)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def step():
        loss, n_fg = crit(model(x), targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, max_norm=10.0)
        opt.step()
        opt.zero_grad()
        ema.update(model)
        return float(loss), n_fg

    for _ in range(a.warmup):
        step()
    times = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        loss, n_fg = step()
        times.append(time.perf_counter() - t0)
    times.sort()
    med = times[len(times) // 2] if len(times) % 2 else (times[len(times) // 2 - 1] + times[len(times) // 2]) / 2
    print(json.dumps({
        "peer": peer_version(), "imgsz": a.imgsz, "batch": a.batch, "freeze": a.freeze,
        "threads": a.threads, "warmup": a.warmup, "steps": a.steps,
        "images_per_s": a.batch * len(times) / sum(times), "median_step_ms": med * 1e3,
        "min_step_ms": times[0] * 1e3, "loss": loss, "n_fg": n_fg,
        "params": sum(p.numel() for p in model.parameters()), "trainable": sum(p.numel() for p in params),
        "rss_before_kb": rss0, "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "mkldnn": torch.backends.mkldnn.is_available()}))


if __name__ == "__main__":
    main()
