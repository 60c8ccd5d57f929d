// What MongoDB answers when two writers meet, said once: the duplicate-key code and the one error a
// guarded write raises when the document moved since it was read (the runner re-reads and retries).
import { KeyflowError } from '../errors';

export const DUPLICATE_KEY = 11000;

export function isDuplicateKey(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === DUPLICATE_KEY;
}

/** Retriable: the event runs again from read(), which then sees the other writer's result. */
export function concurrentUpdate(what: string, id: string): KeyflowError {
  return new KeyflowError('HANDLER_TRANSIENT', `concurrent update of ${what} ${id}`, {
    retriable: true,
    details: { id },
  });
}
