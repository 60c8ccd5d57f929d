// Progress on a terminal and in a CI log: a throttled bar redrawn with "\r" on a TTY, plain quarter
// lines (and timed ones when asked) without control characters anywhere else, counts alone when the
// total is unknown.
import { Progress } from '../../src/cli/progress';

function sink(isTTY: boolean) {
  const writes: string[] = [];
  return {
    writes,
    out: {
      isTTY,
      write(s: string) {
        writes.push(s);
        return true;
      },
    },
    text: () => writes.join(''),
  };
}

beforeEach(() => {
  jest.useFakeTimers({ now: Date.UTC(2026, 0, 1) });
});

afterEach(() => {
  jest.useRealTimers();
});

describe('not a TTY', () => {
  test('a plain line at each quarter, no control characters', () => {
    const s = sink(false);
    const p = new Progress(s.out);
    p.phase('publish', 1000);
    for (let done = 1; done <= 1000; done++) {
      if (done === 600) jest.advanceTimersByTime(12_000);
      p.tick(done);
    }
    p.end('1,000 events in 12s');
    expect(s.text()).not.toContain('\r');
    // eslint-disable-next-line no-control-regex
    expect(s.text()).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
    expect(s.text().split('\n')).toEqual([
      'publish: 0% 0/1000 elapsed 0s',
      'publish: 25% 250/1000 elapsed 0s',
      'publish: 50% 500/1000 elapsed 0s',
      'publish: 75% 750/1000 elapsed 12s',
      'publish: 100% 1000/1000 elapsed 12s',
      'publish: 100% 1000/1000 elapsed 12s 1,000 events in 12s',
      '',
    ]);
  });

  test('a jump over several quarters prints one line; end without summary does not repeat it', () => {
    const s = sink(false);
    const p = new Progress(s.out);
    p.phase('drain', 100);
    p.tick(10);
    p.tick(80);
    p.tick(90);
    p.tick(100);
    p.end();
    expect(s.writes).toEqual([
      'drain: 0% 0/100 elapsed 0s\n',
      'drain: 80% 80/100 elapsed 0s\n',
      'drain: 100% 100/100 elapsed 0s\n',
    ]);
    p.log('next');
    expect(s.writes.at(-1)).toBe('next\n');
  });

  test('end before completion shows where it stopped', () => {
    const s = sink(false);
    const p = new Progress(s.out);
    p.phase('drain', 100);
    p.tick(30);
    p.end();
    expect(s.writes.at(-1)).toBe('drain: 30% 30/100 elapsed 0s\n');
  });
});

describe('on a TTY', () => {
  test('one bar redrawn with \\r, throttled to minIntervalMs', () => {
    const s = sink(true);
    const p = new Progress(s.out, { width: 10, minIntervalMs: 200 });
    p.phase('publish', 1000);
    expect(s.writes).toEqual(['\r[----------] 0% publish 0/1000 elapsed 0s']);
    for (let done = 1; done <= 449; done++) p.tick(done); // no time passes: no redraw
    expect(s.writes).toHaveLength(1);
    jest.advanceTimersByTime(12_000);
    p.tick(450);
    expect(s.writes).toHaveLength(2);
    expect(s.writes[1]).toBe('\r[#####-----] 45% publish 450/1000 elapsed 12s');
    expect(s.text()).not.toContain('\n');
    jest.advanceTimersByTime(100);
    p.tick(500); // only 100 ms since the last draw
    expect(s.writes).toHaveLength(2);
    p.tick(1000); // finishing is always shown
    expect(s.writes[2]).toBe('\r[##########] 100% publish 1000/1000 elapsed 12s');
    p.end('done');
    expect(s.writes.slice(3).join('')).toBe('\r[##########] 100% publish 1000/1000 elapsed 12s done\n');
  });

  test('a shorter redraw blanks what the longer one left behind', () => {
    const s = sink(true);
    const p = new Progress(s.out, { width: 4, minIntervalMs: 0 });
    p.phase('x', 1000);
    p.tick(100);
    expect(s.writes.at(-1)).toBe('\r[----] 10% x 100/1000 elapsed 0s');
    p.tick(5); // a count going back (a restarted drain) draws a shorter line
    expect(s.writes.at(-1)).toBe(`\r[----] 0% x 5/1000 elapsed 0s${' '.repeat(3)}`);
  });

  test('a new phase ends the open one on its own line', () => {
    const s = sink(true);
    const p = new Progress(s.out, { width: 4, minIntervalMs: 0 });
    p.phase('x', 10);
    p.tick(10);
    p.phase('y', 5);
    expect(s.text()).toContain('\r[####] 100% x 10/10 elapsed 0s\n\r[----] 0% y 0/5 elapsed 0s');
  });

  test('log blanks the bar, prints the line, then redraws the bar below it', () => {
    const s = sink(true);
    const p = new Progress(s.out, { width: 10 });
    p.phase('drain', 10);
    const bar = '[----------] 0% drain 0/10 elapsed 0s';
    s.writes.length = 0;
    p.log('retrying partition 3');
    expect(s.writes).toEqual([`\r${' '.repeat(bar.length)}\rretrying partition 3\n`, `\r${bar}`]);
    p.end();
    expect(s.writes.at(-1)).toBe('\n');
  });
});

test('a zero-step phase reads as complete, without NaN', () => {
  const s = sink(true);
  const p = new Progress(s.out, { width: 10 });
  p.phase('nothing to do', 0);
  p.end();
  expect(s.text()).toBe(
    '\r[##########] 100% nothing to do 0/0 elapsed 0s\r[##########] 100% nothing to do 0/0 elapsed 0s\n',
  );
  expect(s.text()).not.toContain('NaN');
});

describe('what the replay pass and the demo need', () => {
  test('a detail after the counts, on the bar and in plain lines', () => {
    const tty = sink(true);
    const bar = new Progress(tty.out, { width: 4, minIntervalMs: 0 });
    bar.phase('replay', 100);
    bar.tick(50, '250/s  ETA 0.2s');
    expect(tty.writes.at(-1)).toBe('\r[##--] 50% replay 50/100 elapsed 0s  250/s  ETA 0.2s');
    const plain = sink(false);
    const lines = new Progress(plain.out);
    lines.phase('replay', 100);
    lines.tick(50, '250/s');
    expect(plain.writes.at(-1)).toBe('replay: 50% 50/100 elapsed 0s  250/s\n');
  });

  test('an unknown total shows counts without a bar or a percentage', () => {
    const tty = sink(true);
    const bar = new Progress(tty.out, { minIntervalMs: 0 });
    bar.phase('replay', null);
    bar.tick(500, '250/s');
    expect(tty.writes.at(-1)).toBe('\rreplay 500 elapsed 0s  250/s');
    expect(tty.text()).not.toContain('%');
  });

  test('off a terminal, plainEveryMs adds a line when that long has passed and the count moved', () => {
    const s = sink(false);
    const p = new Progress(s.out, { plainEveryMs: 5000 });
    p.phase('replay', null);
    for (let i = 1; i <= 20; i++) {
      jest.advanceTimersByTime(1000);
      p.tick(i);
    }
    jest.advanceTimersByTime(10_000); // time passes, the count does not: nothing new to say
    p.tick(20);
    expect(s.writes).toEqual([
      'replay: 0 elapsed 0s\n',
      'replay: 5 elapsed 5s\n',
      'replay: 10 elapsed 10s\n',
      'replay: 15 elapsed 15s\n',
      'replay: 20 elapsed 20s\n',
    ]);
    expect(p.open).toBe(true);
    p.end();
    expect(p.open).toBe(false);
  });
});
