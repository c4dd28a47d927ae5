/**
 * @module shared/logger — a small structured JSON logger. One line per record, fields `time`, `level`, `msg`
 * plus bound context (`request_id`, `tenant`, `cluster`, `adapter`, …). Runtime-neutral; the sink is injected.
 */
import { writeSync } from "node:fs";

export type LogLevel = "debug" | "info" | "warn" | "error";

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every record. */
  child(fields: LogFields): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Receives each formatted line (without newline). Defaults to stdout. */
  sink?: (line: string) => void;
  base?: LogFields;
  now?: () => Date;
}

function serializeError(error: Error): LogFields {
  const out: LogFields = { type: error.name, message: error.message };
  const code = (error as { code?: unknown }).code;
  if (code !== undefined) out.code = code;
  if (error.stack) out.stack = error.stack;
  return out;
}

function normalize(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    out[key] = value instanceof Error ? serializeError(value) : value;
  }
  return out;
}

function safeStringify(record: LogFields): string {
  try {
    // A replacer slows every record down; only a BigInt (a TypeError) needs one.
    return JSON.stringify(record);
  } catch {
    // fall through
  }
  try {
    return JSON.stringify(record, (_key, value) => (typeof value === "bigint" ? value.toString() : value));
  } catch {
    return JSON.stringify({
      time: record.time,
      level: record.level,
      msg: record.msg,
      note: "unserializable fields",
    });
  }
}

/**
 * A sink that hands `write` the lines of one event-loop turn at once rather than one call per line (an access
 * line per request made the write call a visible share of a request's cost). `writeAtExit` gets whatever is
 * still pending when the process exits, so a crash or `process.exit` loses nothing logged before it.
 */
export function batchedSink(
  write: (text: string) => void,
  writeAtExit: (text: string) => void = write,
): (line: string) => void {
  let pending: string[] = [];
  let scheduled = false;
  const take = (): string => {
    const text = `${pending.join("\n")}\n`;
    pending = [];
    return text;
  };
  const flush = () => {
    scheduled = false;
    if (pending.length > 0) write(take());
  };
  process.once("exit", () => {
    if (pending.length === 0) return;
    try {
      writeAtExit(take());
    } catch {
      // the destination is gone: nothing left to tell.
    }
  });
  return (line) => {
    pending.push(line);
    if (pending.length >= 512) flush();
    else if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
}

/** Standard output, batched; written synchronously at exit. */
const stdoutSink = () =>
  batchedSink(
    (text) => process.stdout.write(text),
    (text) => writeSync(1, text),
  );

let sharedStdoutSink: ((line: string) => void) | null = null;
const defaultSink = (line: string): void => {
  sharedStdoutSink ??= stdoutSink();
  sharedStdoutSink(line);
};

export function createLogger(options: LoggerOptions = {}): Logger {
  const threshold = LEVEL_RANK[options.level ?? "info"];
  const sink = options.sink ?? defaultSink;
  const now = options.now ?? (() => new Date());
  const make = (base: LogFields): Logger => {
    const write = (level: LogLevel, msg: string, fields?: LogFields) => {
      if (LEVEL_RANK[level] < threshold) return;
      const record = { time: now().toISOString(), level, msg, ...base, ...(fields ? normalize(fields) : {}) };
      sink(safeStringify(record));
    };
    return {
      debug: (msg, fields) => write("debug", msg, fields),
      info: (msg, fields) => write("info", msg, fields),
      warn: (msg, fields) => write("warn", msg, fields),
      error: (msg, fields) => write("error", msg, fields),
      child: (fields) => make({ ...base, ...normalize(fields) }),
    };
  };
  return make(normalize(options.base ?? {}));
}

/** A logger that keeps its records in memory, for tests that assert on what was logged. */
export function createMemoryLogger(level: LogLevel = "debug"): Logger & { records: LogFields[] } {
  const records: LogFields[] = [];
  const logger = createLogger({ level, sink: (line) => records.push(JSON.parse(line) as LogFields) });
  return Object.assign(logger, { records });
}
