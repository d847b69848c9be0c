// Drives a scripted slixmpp client (Debian's python3-slixmpp) from a test: the script prints
// one JSON event per line, which the test waits for.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

/** Debian's interpreter: python3-slixmpp installs into its dist-packages. */
const PYTHON = '/usr/bin/python3';

/**
 * Whether slixmpp can be used. CI installs python3-slixmpp (.ci/run); there a missing library
 * is a failure, elsewhere the tests are skipped with a warning.
 */
export function slixmppAvailable(): boolean {
  const ok = spawnSync(PYTHON, ['-c', 'import slixmpp'], { stdio: 'ignore' }).status === 0;
  if (!ok) {
    if (process.env.CI) throw new Error('python3-slixmpp is not installed: apt-get install python3-slixmpp');
    console.warn('slixmpp interop tests skipped: apt-get install python3-slixmpp to run them');
  }
  return ok;
}

export interface SlixEvent { event: string; [k: string]: unknown }

export class SlixmppScript {
  readonly events: SlixEvent[] = [];
  readonly exited: Promise<number | null>;
  private readonly proc: ChildProcess;
  private stderr = '';
  private waiters: (() => void)[] = [];

  /** Runs test/interop/<script> with these arguments. */
  constructor(script: string, args: string[]) {
    this.proc = spawn(PYTHON, [join(__dirname, '../interop', script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      try {
        this.events.push(JSON.parse(line) as SlixEvent);
      } catch {
        this.stderr += line + '\n';
      }
      this.wake();
    });
    this.proc.stderr!.on('data', (d) => { this.stderr += String(d); });
    this.exited = new Promise((r) => this.proc.once('exit', (code) => { r(code); this.wake(); }));
  }

  async waitFor(pred: (e: SlixEvent) => boolean, what: string, timeoutMs = 10_000): Promise<SlixEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(pred);
      if (found) return found;
      if (Date.now() > deadline || this.proc.exitCode !== null) {
        throw new Error(`slixmpp: no ${what}; events: ${JSON.stringify(this.events)}; stderr: ${this.stderr.slice(-2000)}`);
      }
      await new Promise<void>((r) => {
        const t = setTimeout(r, 100);
        this.waiters.push(() => { clearTimeout(t); r(); });
      });
    }
  }

  kill(): void {
    this.proc.kill('SIGKILL');
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
