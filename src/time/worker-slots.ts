/**
 * A fixed number of slots for work that runs at once (the controller's reconciles), which work gives up while it
 * only waits on something else: a pod the cluster is starting, an agent booting. The limit bounds what loads the
 * engine and this process, not time spent waiting on others: on Kubernetes each agent's start held its slot for
 * the seconds the cluster took to run its pod, and 1,000 agents went through 64 slots at the rate of those waits
 * (docs/performance.md, "Kubernetes: 1,000 agents on kwok nodes").
 *
 * The work's code need not carry its slot around: `waitOutsideSlot` finds the slot of the work it runs in (an
 * AsyncLocalStorage context); outside any (a CLI command, a test) it simply waits. A slot is one task of a p-queue
 * that lasts while the work holds it.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import PQueue from "p-queue";

interface Slot {
  /** Waits of the work now pending: the slot is given up at the first and taken back after the last. */
  waits: number;
  finished: boolean;
  /** Ends the queue task that is the slot. */
  free(): void;
}

const current = new AsyncLocalStorage<{ slots: WorkerSlots; slot: Slot }>();

/** Work coming back from a wait goes before work not yet begun: what is under way finishes first. */
const RETURNING = 1;

export class WorkerSlots {
  private readonly queue: PQueue;

  constructor(size: number) {
    this.queue = new PQueue({ concurrency: size });
  }

  /** Runs `work` in a slot, once one is free. */
  async run<T>(work: () => Promise<T>): Promise<T> {
    const slot: Slot = { waits: 0, finished: false, free: () => {} };
    await this.take(slot, 0);
    try {
      return await current.run({ slots: this, slot }, work);
    } finally {
      slot.finished = true;
      // A wait the work left pending (not awaited) has given the slot up already.
      if (slot.waits === 0) slot.free();
    }
  }

  /** Resolves once `slot` holds a place in the queue, which it keeps until `slot.free()`. */
  take(slot: Slot, priority: number): Promise<void> {
    return new Promise((taken) => {
      void this.queue.add(
        () =>
          new Promise<void>((free) => {
            slot.free = free;
            taken();
          }),
        { priority },
      );
    });
  }

  /** Slots held now. */
  get busy(): number {
    return this.queue.pending;
  }
}

/** Awaits `wait` without holding the caller's slot, if it runs in one, and takes a slot again before returning. */
export async function waitOutsideSlot<T>(wait: () => Promise<T>): Promise<T> {
  const held = current.getStore();
  if (!held) return wait();
  const { slots, slot } = held;
  if (slot.waits++ === 0) slot.free();
  try {
    return await wait();
  } finally {
    if (--slot.waits === 0 && !slot.finished) await slots.take(slot, RETURNING);
  }
}
