// Liveness and readiness: components register named readiness checks (MongoDB answers, settings caught
// up, consumers joined) and /readyz reports each one; a check that hangs counts as failing.
import type { Db } from 'mongodb';
import { classify } from '../errors';

/** true / false, or an object with a short detail for the /readyz body. */
export type CheckResult = boolean | { ok: boolean; detail?: string };
export type ReadinessCheck = () => CheckResult | Promise<CheckResult>;

export interface CheckReport {
  ok: boolean;
  detail?: string;
  ms: number;
}

export interface ReadinessReport {
  ready: boolean;
  checks: Record<string, CheckReport>;
}

export class HealthSource {
  private readonly checks = new Map<string, ReadinessCheck>();

  /** @param timeoutMs how long one check may take before it counts as failing (default 2000). */
  constructor(private readonly timeoutMs = 2000) {}

  /** Adds a check under a unique name; returns a function that removes it. */
  register(name: string, check: ReadinessCheck): () => void {
    this.checks.set(name, check);
    return () => {
      if (this.checks.get(name) === check) this.checks.delete(name);
    };
  }

  /** Runs every check concurrently. With no checks registered the process counts as ready. */
  async readiness(): Promise<ReadinessReport> {
    const entries = await Promise.all(
      [...this.checks].map(async ([name, check]) => [name, await this.run(check)] as const),
    );
    const checks = Object.fromEntries(entries);
    return { ready: entries.every(([, r]) => r.ok), checks };
  }

  private async run(check: ReadinessCheck): Promise<CheckReport> {
    const started = Date.now();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<CheckResult>((resolve) => {
      timer = setTimeout(
        () => resolve({ ok: false, detail: `no answer within ${this.timeoutMs}ms` }),
        this.timeoutMs,
      );
    });
    try {
      const res = await Promise.race([Promise.resolve().then(check), timeout]);
      const r = typeof res === 'boolean' ? { ok: res } : res;
      return { ...r, ms: Date.now() - started };
    } catch (err) {
      const e = classify(err);
      return { ok: false, detail: `${e.code}: ${e.message}`, ms: Date.now() - started };
    } finally {
      clearTimeout(timer);
    }
  }
}

/** A readiness check that MongoDB answers a ping. */
export function mongoCheck(db: Db): ReadinessCheck {
  return async () => {
    await db.command({ ping: 1 });
    return true;
  };
}
