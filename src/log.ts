import pino, { type Logger } from 'pino';

export type { Logger };
export type LogFormat = 'json' | 'pretty' | 'auto';

/**
 * JSON logs by default (for collectors), human-readable when stdout is a terminal.
 * Passwords never reach a logger; stanzas and bodies only at debug level.
 */
export function createLogger(level: string, format: LogFormat = 'auto'): Logger {
  const pretty = format === 'pretty' || (format === 'auto' && process.stdout.isTTY === true);
  if (pretty) {
    return pino({
      level,
      transport: { target: 'pino-pretty', options: { colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } },
    });
  }
  return pino({ level, base: undefined, redact: ['password', '*.password'] });
}

/** A logger that writes nothing, for tests and CLI commands that run quietly. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
