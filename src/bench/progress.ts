// Progress of a long benchmark phase on the terminal. A TTY gets one bar redrawn in place with "\r"
// (throttled, so a hot loop calling tick() costs nothing); anything else, a CI log above all, gets a
// plain line at each quarter, with no control characters to garble the log.

export type ProgressOutput = NodeJS.WriteStream | { write(s: string): boolean; isTTY?: boolean };

export interface ProgressOptions {
  /** Cells in the bar. */
  width?: number;
  /** Least time between two redraws on a TTY. */
  minIntervalMs?: number;
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
  private label = '';
  private total = 0;
  private done = 0;
  private startedAt = 0;
  private active = false;
  private lastDrawAt = -Infinity;
  /** Characters of the bar now on screen (TTY), so a shorter redraw or log() can blank it. */
  private shown = 0;
  /** The last quarter printed (not a TTY), and the count it was printed at. */
  private lastQuarter = -1;
  private lastPrintedDone = -1;

  constructor(
    private readonly out: ProgressOutput,
    opts: ProgressOptions = {},
  ) {
    this.tty = out.isTTY === true;
    this.width = Math.max(1, Math.floor(opts.width ?? 20));
    this.minIntervalMs = opts.minIntervalMs ?? 200;
  }

  /** Starts a phase of `total` steps; a phase still open is ended first. */
  phase(label: string, total: number): void {
    if (this.active) this.end();
    this.label = label;
    this.total = Math.max(0, total);
    this.done = 0;
    this.startedAt = Date.now();
    this.active = true;
    this.lastDrawAt = -Infinity;
    this.lastQuarter = -1;
    this.lastPrintedDone = -1;
    this.update(true);
  }

  /** Steps done so far in the current phase (absolute, not an increment). */
  tick(done: number): void {
    if (!this.active) return;
    this.done = done;
    this.update(false);
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
    if (this.total === 0) return 100;
    return Math.min(100, Math.max(0, Math.floor((this.done / this.total) * 100)));
  }

  private update(force: boolean): void {
    const pct = this.percent();
    if (this.tty) {
      const now = Date.now();
      const finished = this.done >= this.total && this.lastPrintedDone !== this.done;
      if (!force && !finished && now - this.lastDrawAt < this.minIntervalMs) return;
      this.draw(this.barLine());
      this.lastDrawAt = now;
      this.lastPrintedDone = this.done;
      return;
    }
    const quarter = Math.floor(pct / 25);
    if (quarter > this.lastQuarter) {
      this.out.write(`${this.plainLine()}\n`);
      this.lastQuarter = quarter;
      this.lastPrintedDone = this.done;
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

  private barLine(): string {
    const pct = this.percent();
    const filled = Math.round((pct / 100) * this.width);
    const bar = '#'.repeat(filled) + '-'.repeat(this.width - filled);
    return `[${bar}] ${pct}% ${this.label} ${this.done}/${this.total} elapsed ${this.elapsed()}`;
  }

  private plainLine(): string {
    return `${this.label}: ${this.percent()}% ${this.done}/${this.total} elapsed ${this.elapsed()}`;
  }
}
