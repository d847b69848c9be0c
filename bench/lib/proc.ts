/** Reading a process's CPU time and memory from /proc, and small process/port helpers (Linux). */
import { readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';

/** Clock ticks per second for /proc/PID/stat (sysconf(_SC_CLK_TCK)); 100 on Linux/x86. */
let clkTck = 100;
try {
  clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* keep 100 */
}
export const CLK_TCK = clkTck;

export interface CpuTimes {
  /** user + system CPU of all the process's threads, in microseconds. */
  cpuUs: number;
  userUs: number;
  sysUs: number;
}

/** utime + stime from /proc/PID/stat (fields 14 and 15, after the parenthesised comm). */
export function cpuTimes(pid: number): CpuTimes {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state): utime is field 14 -> rest[11], stime field 15 -> rest[12]
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  const k = 1e6 / CLK_TCK;
  return { cpuUs: (utime + stime) * k, userUs: utime * k, sysUs: stime * k };
}

/**
 * CPU time of each of the process's threads (user + system, microseconds), by thread id, from
 * /proc/PID/task/TID/stat; threads that end between the listing and the read are left out.
 */
export function threadCpuUs(pid: number): Map<number, number> {
  const out = new Map<number, number>();
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), ((Number(rest[11]) + Number(rest[12])) * 1e6) / CLK_TCK);
    } catch {
      /* the thread ended */
    }
  }
  return out;
}

/** VmRSS of the process in bytes (from /proc/PID/status). */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface ProcInfo {
  pid: number;
  ppid: number;
  comm: string;
}

function listProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const open = stat.indexOf('(');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(open + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      out.push({ pid: Number(name), ppid, comm });
    } catch {
      /* gone */
    }
  }
  return out;
}

/** PIDs of the descendants of `root` (not including it) whose comm matches. */
export function findDescendants(root: number, comm: RegExp): number[] {
  const procs = listProcesses();
  const children = new Map<number, ProcInfo[]>();
  for (const p of procs) {
    let list = children.get(p.ppid);
    if (!list) children.set(p.ppid, (list = []));
    list.push(p);
  }
  const found: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    for (const c of children.get(pid) ?? []) {
      if (comm.test(c.comm)) found.push(c.pid);
      stack.push(c.pid);
    }
  }
  return found;
}

export function commOf(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
  } catch {
    return '';
  }
}

/** The soft and hard open-files limits of a process (from /proc/PID/limits). */
export function fileLimit(pid: number | 'self' = 'self'): { soft: number; hard: number } {
  const limits = readFileSync(`/proc/${pid}/limits`, 'latin1');
  const m = /Max open files\s+(\S+)\s+(\S+)/.exec(limits);
  const num = (s: string | undefined) => (s === 'unlimited' ? Infinity : Number(s));
  return { soft: num(m?.[1]), hard: num(m?.[2]) };
}

/**
 * Raises this process's open-files limit to at least `n` with prlimit(1) on our own PID
 * (Node has no setrlimit). Raising the hard limit needs root; otherwise the soft limit goes
 * up to the hard one. Returns the limit in force afterwards.
 */
export function raiseFileLimit(n: number): number {
  const cur = fileLimit();
  if (cur.soft >= n) return cur.soft;
  const target = process.getuid?.() === 0 ? n : Math.min(n, cur.hard);
  const hard = Math.max(target, cur.hard === Infinity ? target : cur.hard);
  try {
    execFileSync('prlimit', ['--pid', String(process.pid), `--nofile=${target}:${hard}`], { stdio: 'ignore' });
  } catch {
    /* keep what we have */
  }
  return fileLimit().soft;
}

/** A free TCP port on the loopback address (bind to port 0, read it, close). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** This process's CPU (user + system) in microseconds. */
export function selfCpuUs(): number {
  const u = process.cpuUsage();
  return u.user + u.system;
}
