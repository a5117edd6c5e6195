"""A discovery as N ranks of torch.distributed: what ranks share, shard and reduce.

Data parallel over one global stream. Each training step the ranks draw the same global batch
(the same generator, the same seed) and each computes its own contiguous share of its rows
(`rows_of_rank`); mask gradients are then summed over the ranks (`sum_gradients`). A step's
gradient is so the one-process gradient of the same batch, summed in another order: the same
seed gives the same circuit whatever N is, up to float rounding. (Independent per-rank streams
would make every N a different experiment.)

Weights sharded with FSDP (`shard_model`): every unit the model names (`shard_units`: a
language model's attention and MLP blocks) holds 1/N of its weights on each rank and gathers
them only around its own forward and backward; the rest (embeddings, final norm, head, the
masks) stays whole on every rank. Every rank must then run the same sequence of forwards (each
is a collective): code that runs on one rank only must not call the model.
"""
from __future__ import annotations

import torch


def world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) outside torch.distributed."""
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return 0, 1
    return dist.get_rank(), dist.get_world_size()


def rows_of_rank(n: int, rank: int, world_size: int) -> slice:
    """Rank `rank`'s contiguous share of n rows: sizes differ by at most one, earlier ranks
    take the extra rows."""
    if world_size > n:
        raise ValueError(f"{world_size} ranks cannot share a batch of {n} rows: make the batch "
                         f"size at least the number of processes")
    base, extra = divmod(n, world_size)
    start = rank * base + min(rank, extra)
    return slice(start, start + base + (rank < extra))


def sum_gradients(tensors) -> None:
    """Sum the .grad of `tensors` over the ranks, in place (one collective for all)."""
    import torch.distributed as dist
    grads = [t.grad for t in tensors if t.grad is not None]
    if not grads or world()[1] == 1:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def sum_over_ranks(values: list[float]) -> list[float]:
    """Numbers (counters) summed over the ranks, in float64."""
    import torch.distributed as dist
    if world()[1] == 1:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def gather_objects(value) -> list:
    """Every rank's `value` (JSON-able), in rank order, on every rank."""
    import torch.distributed as dist
    if world()[1] == 1:
        return [value]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, value)
    return out


def shard_model(model, device: torch.device) -> int:
    """Shard the weights of every unit `model.shard_units()` names over the ranks (FSDP,
    torch.distributed.fsdp.fully_shard on a 1-D mesh of all ranks, resharded after each
    forward); returns how many units were sharded (0: replicated, e.g. a Tracr model)."""
    rank, size = world()
    units = model.shard_units() if hasattr(model, "shard_units") else []
    if size == 1 or not units:
        return 0
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    import warnings
    # a block's outputs are views (heads unbound from one tensor); the masked forward never
    # writes into them in place, which is what this warning is about
    warnings.filterwarnings("ignore", message="FSDP2-wrapped module .* returned a view tensor")
    mesh = init_device_mesh(torch.device(device).type, (size,))
    for unit in units:
        fully_shard(unit, mesh=mesh, reshard_after_forward=True)
    return len(units)


def materialize(model, device, fill) -> None:
    """Give a model built on the meta device (and sharded: `shard_model`) real weights, each
    rank allocating and filling only its own share: `fill(name, shape, rows)` returns rows
    `rows` (a slice of dim 0) of the full parameter or buffer `name` of that `shape`. A
    sharded parameter gets its shard's rows (FSDP's dim-0 chunks), everything else all of
    them. So no rank ever holds the whole model (its full layers), which is what lets a model
    larger than one device's memory load at all."""
    from torch.distributed.tensor import DTensor
    rank, size = world()
    model.to_empty(device=device)
    tensors = [*model.named_parameters(), *model.named_buffers()]
    with torch.no_grad():
        for name, t in tensors:
            if isinstance(t, DTensor):
                local = t.to_local()
                start = rank * -(-t.shape[0] // size)  # torch.chunk's split of dim 0
                rows = slice(start, start + local.shape[0])
                if local.shape[0]:
                    local.copy_(fill(name, tuple(t.shape), rows))
            else:
                t.copy_(fill(name, tuple(t.shape), slice(0, t.shape[0] if t.dim() else None)))
