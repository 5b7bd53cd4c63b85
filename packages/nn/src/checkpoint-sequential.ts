import { KilnError, checkpoint, type CheckpointOptions, type Tensor } from '@kiln/core';
import { Module } from './module.js';
import { Sequential } from './layers/container.js';

/**
 * Runs `modules` in order on `input`, checkpointing them in `segments`
 * consecutive groups (torch.utils.checkpoint.checkpoint_sequential): only
 * each group's output is kept for backward. As PyTorch, the groups have
 * ⌊n / segments⌋ modules and the last group (with the remainder) runs
 * without checkpointing, its activations are needed first anyway.
 */
export function checkpointSequential(modules: Sequential | readonly Module[], segments: number, input: Tensor, opts: CheckpointOptions = {}): Tensor {
  const list = modules instanceof Sequential ? modules.children() : [...modules];
  if (!Number.isInteger(segments) || segments < 1) throw new KilnError('checkpointSequential', `segments must be a positive integer, got ${segments}`);
  if (segments > list.length) throw new KilnError('checkpointSequential', `segments (${segments}) cannot exceed the number of modules (${list.length})`);
  const size = Math.floor(list.length / segments);
  const runRange = (start: number, end: number) => (x: Tensor): Tensor => {
    let h = x;
    for (let i = start; i < end; i++) h = list[i]!.call(h) as Tensor;
    return h;
  };
  let h = input;
  let start = 0;
  for (; start < size * (segments - 1); start += size) h = checkpoint(runRange(start, start + size), h, opts);
  return runRange(start, list.length)(h);
}
