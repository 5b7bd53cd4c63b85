# PyTorch side of tools/step-parity.mjs: the same steps from its init.pth on its batches;
# prints the losses, then per parameter the largest difference from Kiln's final weights and last gradients.
import sys, json, numpy as np, torch, torchvision, torch.nn.functional as F
out, steps, bs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(1)
x = torch.from_numpy(np.fromfile(f'{out}/x.bin', dtype=np.float32).reshape(-1, 3, 32, 32)); y = torch.from_numpy(np.fromfile(f'{out}/y.bin', dtype=np.int32).astype(np.int64))
m = torchvision.models.resnet18(num_classes=5); m.load_state_dict(torch.load(f'{out}/init.pth')); m.train()
opt = torch.optim.SGD(m.parameters(), lr=0.02, momentum=0.9, weight_decay=5e-4)
ls = []
for s in range(steps):
    l = F.cross_entropy(m(x[s*bs:(s+1)*bs]), y[s*bs:(s+1)*bs]); opt.zero_grad(); l.backward()
    if s == steps - 1:
        kg = torch.load(f'{out}/grads.pth')
        for n, p in m.named_parameters():
            d = (kg[n] - p.grad).abs().max().item(); print(f'GRAD {n:40s} max|diff| {d:.3e} max|torch| {p.grad.abs().max().item():.3e}')
    opt.step(); ls.append(l.item())
print(json.dumps({'torch': ls}))
k = torch.load(f'{out}/after.pth'); t = m.state_dict()
for n in t:
    if t[n].dtype != torch.float32: continue
    d = (k[n] - t[n]).abs().max().item(); sc = t[n].abs().max().item()
    print(f'{n:40s} max|diff| {d:.3e}  max|torch| {sc:.3e}')
