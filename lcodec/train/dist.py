"""Data-parallel training under torchrun: `torchrun --nproc_per_node N -m lcodec.cli train ...`.

torchrun sets RANK / WORLD_SIZE / LOCAL_RANK; `lcodec train` then joins the process group
(NCCL on GPUs, gloo on CPUs) and every rank trains on its own random crops (seed = rank).
The synchronisation is DistributedDataParallel's: the same initial weights (broadcast from
rank 0), gradients averaged over the ranks before every optimizer step, buffers broadcast from
rank 0 after every step. It is done with torch.distributed collectives on the optimizer rather
than by the DDP wrapper, because our trainers' steps call several methods of a model (a DDP
module only synchronises through forward()). An update that is not a gradient step (MGM's
codeword re-seeding draws from each rank's own batch) broadcasts what it changed from rank 0.
Rank 0 alone validates, saves checkpoints, logs, and exports (frozen tables are fitted once,
there). Each rank writes the sha256 of its final weights to RUN_DIR/rankN.sha256: equal
hashes show the ranks never drifted apart."""
import os

import torch


def enabled():
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def rank():
    return torch.distributed.get_rank() if is_initialized() else 0


def world():
    return torch.distributed.get_world_size() if is_initialized() else 1


def is_initialized():
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def is_main():
    return rank() == 0


def init(device_request):
    """Join the torchrun group if there is one; returns the device this rank trains on."""
    from ..cli.devices import pick_device
    if not enabled():
        return pick_device(device_request)
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device_request)
    if dev.type == "cuda":
        dev = torch.device("cuda", local)
        torch.cuda.set_device(dev)
    torch.distributed.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return dev


def finish():
    if is_initialized():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def broadcast_state(module):
    """Every parameter and buffer of `module` set to rank 0's values."""
    if not is_initialized():
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            torch.distributed.broadcast(t.data, 0)


def broadcast_buffers(module):
    if not is_initialized():
        return
    for b in module.buffers():
        torch.distributed.broadcast(b.data, 0)


def average_gradients_before_each_step(optimizer):
    """Register the all-reduce (mean) of every gradient before each optimizer step."""
    if not is_initialized():
        return

    def hook(opt, args, kwargs):
        n = world()
        for group in opt.param_groups:
            for p in group["params"]:
                if not p.requires_grad:
                    continue
                if p.grad is None:   # a parameter unused on this rank still joins the reduction
                    p.grad = torch.zeros_like(p)
                torch.distributed.all_reduce(p.grad, op=torch.distributed.ReduceOp.SUM)
                p.grad.div_(n)
    optimizer.register_step_pre_hook(hook)


def agree(values):
    """Rank 0's values (a list of floats) on every rank: stop decisions and schedules."""
    if not is_initialized():
        return values
    t = torch.tensor(values, dtype=torch.float64)
    torch.distributed.broadcast(t, 0)
    return t.tolist()


def weights_sha256(module):
    """sha256 of a module's parameters and buffers (to show the ranks ended identical)."""
    import hashlib
    h = hashlib.sha256()
    for k, v in sorted(module.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
