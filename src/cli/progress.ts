// Progress of a long phase (a benchmark drain, a replay pass, the demo's traffic) on the terminal. A TTY
// gets one bar redrawn in place with "\r" (throttled, so a hot loop calling tick() costs nothing);
// anything else, a CI log above all, gets a plain line at each quarter (and every `plainEveryMs` if
// set), with no control characters to garble the log.

export type ProgressOutput = NodeJS.WriteStream | { write(s: string): boolean; isTTY?: boolean };

export interface ProgressOptions {
  /** Cells in the bar. */
  width?: number;
  /** Least time between two redraws on a TTY. */
  minIntervalMs?: number;
  /** Not a TTY: also a plain line when this long has passed since the last (a long run or no total). */
  plainEveryMs?: number;
}

/** 12 → "12s", 125 → "2m05s". */
function formatElapsed(ms: number): string {
  const s = Math.floor(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

export class Progress {
  private readonly tty: boolean;
  private readonly width: number;
  private readonly minIntervalMs: number;
  private readonly plainEveryMs: number;
  private label = '';
  /** null: the phase does not know how many steps it has; counts are shown without a bar. */
  private total: number | null = 0;
  private done = 0;
  private detail = '';
  private startedAt = 0;
  private active = false;
  private lastDrawAt = -Infinity;
  /** Characters of the bar now on screen (TTY), so a shorter redraw or log() can blank it. */
  private shown = 0;
  /** The last quarter printed (not a TTY), and the count it was printed at. */
  private lastQuarter = -1;
  private lastPrintedDone = -1;
  private lastPrintedAt = -Infinity;

  constructor(
    private readonly out: ProgressOutput,
    opts: ProgressOptions = {},
  ) {
    this.tty = out.isTTY === true;
    this.width = Math.max(1, Math.floor(opts.width ?? 20));
    this.minIntervalMs = opts.minIntervalMs ?? 200;
    this.plainEveryMs = opts.plainEveryMs ?? Infinity;
  }

  /** Starts a phase of `total` steps (null when unknown); a phase still open is ended first. */
  phase(label: string, total: number | null): void {
    if (this.active) this.end();
    this.label = label;
    this.total = total === null ? null : Math.max(0, total);
    this.done = 0;
    this.detail = '';
    this.startedAt = Date.now();
    this.active = true;
    this.lastDrawAt = -Infinity;
    this.lastQuarter = -1;
    this.lastPrintedDone = -1;
    this.lastPrintedAt = -Infinity;
    this.update(true);
  }

  /** Steps done so far in the current phase (absolute, not an increment), and what to show after them. */
  tick(done: number, detail?: string): void {
    if (!this.active) return;
    this.done = done;
    if (detail !== undefined) this.detail = detail;
    this.update(false);
  }

  /** Whether a phase is open (ticks are shown). */
  get open(): boolean {
    return this.active;
  }

  /** Shows the final state of the phase, with an optional summary, and moves to a new line. */
  end(summary?: string): void {
    const tail = summary ? ` ${summary}` : '';
    if (!this.active) {
      if (summary) this.out.write(`${summary}\n`);
      return;
    }
    if (this.tty) {
      this.draw(this.barLine() + tail);
      this.out.write('\n');
    } else if (summary || this.lastPrintedDone !== this.done) {
      this.out.write(`${this.plainLine()}${tail}\n`);
    }
    this.active = false;
    this.shown = 0;
  }

  /** A line of its own, above the bar on a TTY (the bar is blanked, then redrawn below it). */
  log(line: string): void {
    if (this.tty && this.shown > 0) {
      this.out.write(`\r${' '.repeat(this.shown)}\r${line}\n`);
      this.shown = 0;
      this.draw(this.barLine());
      this.lastDrawAt = Date.now();
    } else {
      this.out.write(`${line}\n`);
    }
  }

  private percent(): number {
    if (this.total === null) return 0;
    if (this.total === 0) return 100;
    return Math.min(100, Math.max(0, Math.floor((this.done / this.total) * 100)));
  }

  private update(force: boolean): void {
    const pct = this.percent();
    if (this.tty) {
      const now = Date.now();
      const finished = this.total !== null && this.done >= this.total && this.lastPrintedDone !== this.done;
      if (!force && !finished && now - this.lastDrawAt < this.minIntervalMs) return;
      this.draw(this.barLine());
      this.lastDrawAt = now;
      this.lastPrintedDone = this.done;
      return;
    }
    const quarter = this.total === null ? 0 : Math.floor(pct / 25);
    const now = Date.now();
    const due = this.done !== this.lastPrintedDone && now - this.lastPrintedAt >= this.plainEveryMs;
    if (quarter > this.lastQuarter || due) {
      this.out.write(`${this.plainLine()}\n`);
      this.lastQuarter = quarter;
      this.lastPrintedDone = this.done;
      this.lastPrintedAt = now;
    }
  }

  /** Rewrites the bar line, padding with blanks over whatever longer text was there. */
  private draw(text: string): void {
    this.out.write(`\r${text}${' '.repeat(Math.max(0, this.shown - text.length))}`);
    this.shown = text.length;
  }

  private elapsed(): string {
    return formatElapsed(Date.now() - this.startedAt);
  }

  private tail(): string {
    return this.detail ? `  ${this.detail}` : '';
  }

  private barLine(): string {
    if (this.total === null) return `${this.label} ${this.done} elapsed ${this.elapsed()}${this.tail()}`;
    const pct = this.percent();
    const filled = Math.round((pct / 100) * this.width);
    const bar = '#'.repeat(filled) + '-'.repeat(this.width - filled);
    return `[${bar}] ${pct}% ${this.label} ${this.done}/${this.total} elapsed ${this.elapsed()}${this.tail()}`;
  }

  private plainLine(): string {
    if (this.total === null) return `${this.label}: ${this.done} elapsed ${this.elapsed()}${this.tail()}`;
    return `${this.label}: ${this.percent()}% ${this.done}/${this.total} elapsed ${this.elapsed()}${this.tail()}`;
  }
}
