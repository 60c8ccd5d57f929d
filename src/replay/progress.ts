// Progress of a full replay pass on stderr: redrawn in place on a terminal, and one plain line every few
// seconds otherwise, so CI logs show the run advancing without thousands of carriage returns.
import type { ReplayProgress } from './full-pass';
import { formatDuration } from './report';

export interface ProgressStream {
  isTTY?: boolean;
  write(text: string): unknown;
}

export interface ProgressBarOptions {
  stream?: ProgressStream;
  /** Between plain lines when not a terminal (default 5000ms). */
  intervalMs?: number;
  /** Between redraws on a terminal (default 100ms). */
  redrawMs?: number;
  now?: () => number;
}

type Shown = Pick<ReplayProgress, 'checked' | 'total' | 'rate' | 'withDifferences' | 'shards' | 'shardsDone'>;

/** `[#####.....]  1200/2000  60%  950/s  ETA 1s  3 differing  shards 1/4`; no bar without a total. */
export function formatProgress(p: Shown, width = 24): string {
  const rate = `${Math.round(p.rate)}/s`;
  const tail = `${p.withDifferences} differing  shards ${p.shardsDone}/${p.shards}`;
  if (!p.total) return `${p.checked} checked  ${rate}  ${tail}`;
  const ratio = Math.min(1, p.checked / p.total);
  const filled = Math.round(ratio * width);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  const left = p.total - p.checked;
  // The total is an estimate: past it, or before any rate is known, an ETA would be a guess.
  const eta = left > 0 && p.rate > 0 ? formatDuration((left / p.rate) * 1000) : '?';
  return `${bar} ${p.checked}/${p.total} ${Math.round(ratio * 100)}%  ${rate}  ETA ${eta}  ${tail}`;
}

export class ProgressBar {
  private readonly stream: ProgressStream;
  private readonly tty: boolean;
  private readonly every: number;
  private readonly now: () => number;
  private last = -Infinity;
  private latest: Shown | undefined;
  private drawn = false;

  constructor(opts: ProgressBarOptions = {}) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = this.stream.isTTY === true;
    this.every = this.tty ? (opts.redrawMs ?? 100) : (opts.intervalMs ?? 5000);
    this.now = opts.now ?? Date.now;
  }

  update(p: Shown): void {
    this.latest = p;
    const t = this.now();
    if (t - this.last < this.every) return;
    this.last = t;
    this.draw(p);
  }

  /** Shows the latest progress once more and ends the line, so what follows starts clean; idempotent. */
  done(): void {
    if (this.latest) this.draw(this.latest);
    if (this.tty && this.drawn) this.stream.write('\n');
    this.latest = undefined;
    this.drawn = false;
  }

  private draw(p: Shown): void {
    // \r and erase-to-end-of-line redraw a terminal's line in place; elsewhere each update is a line.
    if (this.tty) this.stream.write(`\r${formatProgress(p)}\x1b[K`);
    else this.stream.write(`replay: ${formatProgress(p)}\n`);
    this.drawn = true;
  }
}
