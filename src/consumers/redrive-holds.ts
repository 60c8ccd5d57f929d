// Which selected letters a re-drive would only park again. The runner lets a re-driven event pass when
// no earlier letter of its key (same partition, lower offset) is still open, unless that letter is
// re-driven ahead of it. So a letter is held when an earlier open letter of its key is neither sent in
// this run nor already on its way: `parked`, or `redriven` so long ago its re-drive may be lost.
// A held letter stays parked, so it holds the key's later selected letters in turn.
import type { Db } from 'mongodb';
import { deadLetters, OPEN_STATUSES, type DeadLetter } from '../state/dead-letters';

export interface HeldLetter {
  id: string;
  key: string;
  /** The earliest open letter of the key that holds it, and that letter's code and status. */
  behind: string;
  behindCode: string;
  behindStatus: string;
}

type OpenLetter = Pick<DeadLetter, '_id' | 'partition' | 'position' | 'status' | 'updatedAt' | 'code'>;

export class KeyHolds {
  /** Per key, its open letters as first seen in this run, in order. */
  private readonly open = new Map<string, OpenLetter[]>();
  private readonly sent = new Set<string>();
  private readonly staleBefore: number;

  constructor(
    private readonly db: Db,
    private readonly stage: string,
    staleRedrivenMs: number,
  ) {
    this.staleBefore = Date.now() - staleRedrivenMs;
  }

  /**
   * Splits a page (in original order, keyed letters only) into letters to send and letters held. Letters
   * to send count as sent from here on. Reads each key's open letters once per run.
   */
  async split(page: readonly DeadLetter[]): Promise<{ go: DeadLetter[]; held: HeldLetter[] }> {
    const unseen = [...new Set(page.map((l) => l.key!))].filter((k) => !this.open.has(k));
    await Promise.all(unseen.map(async (k) => this.open.set(k, await this.openLetters(k))));
    const go: DeadLetter[] = [];
    const held: HeldLetter[] = [];
    for (const l of page) {
      const blocker = this.open
        .get(l.key!)!
        .find(
          (e) =>
            e.partition === l.partition &&
            e.position < l.position &&
            !this.sent.has(e._id) &&
            (e.status === 'parked' || e.updatedAt.getTime() < this.staleBefore),
        );
      if (blocker) {
        held.push({
          id: l._id,
          key: l.key!,
          behind: blocker._id,
          behindCode: blocker.code,
          behindStatus: blocker.status,
        });
      } else {
        go.push(l);
        this.sent.add(l._id);
      }
    }
    return { go, held };
  }

  private async openLetters(key: string): Promise<OpenLetter[]> {
    const found = await deadLetters(this.db)
      .find(
        { stage: this.stage, key, status: { $in: OPEN_STATUSES } },
        { projection: { partition: 1, position: 1, status: 1, updatedAt: 1, code: 1 } },
      )
      .toArray();
    return (found as OpenLetter[]).sort((a, b) => a.partition - b.partition || a.position - b.position);
  }
}
