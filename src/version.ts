import { readFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

let cached: string | undefined;

/** The server's version from package.json, found from src/ or dist/src/. */
export function packageVersion(): string {
  if (cached !== undefined) return cached;
  let dir = __dirname;
  for (let i = 0; i < 4; i++) {
    const p = join(dir, 'package.json');
    if (existsSync(p)) {
      cached = (JSON.parse(readFileSync(p, 'utf8')) as { version: string }).version;
      return cached;
    }
    dir = dirname(dir);
  }
  cached = '0.0.0';
  return cached;
}
