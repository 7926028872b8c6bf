/**
 * CPU time of the calling thread (Linux: /proc/thread-self/stat, 10 ms ticks). On a machine shared with other work,
 * wall time is inflated by waiting for a core; a thread's CPU time is what its wall time would be on an idle core, so
 * the benchmark reports both. Undefined where /proc is not available.
 */
import * as fs from 'fs';

const TICK_MS = 10; // USER_HZ is 100 on every mainstream Linux build

export function threadCpuMs(): number | undefined {
  try {
    const stat = fs.readFileSync('/proc/thread-self/stat', 'utf8');
    // fields after the ")" that closes the command name: state is field 3, utime 14, stime 15
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

/** CPU seconds of this whole process so far (every thread: the worker threads' and the native kernels' too). */
export function processCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
