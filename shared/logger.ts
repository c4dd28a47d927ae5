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

/** Keys every record starts with; bound or per-call fields of the same name replace them. */
const RECORD_KEYS = new Set(["time", "level", "msg"]);

/** `JSON.stringify(fields)` without its braces (`"a":1,"b":2`), or null when it cannot be done directly. */
function innerJson(fields: LogFields): string | null {
  let text: string;
  try {
    text = JSON.stringify(fields);
  } catch {
    return null; // a BigInt: the slow path's replacer handles it
  }
  return text.slice(1, -1);
}

let lastMs = -1;
let lastIso = "";
/** `new Date().toISOString()`, formatted once per millisecond: a busy server logs many lines per millisecond. */
function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const threshold = LEVEL_RANK[options.level ?? "info"];
  const sink = options.sink ?? defaultSink;
  const now = options.now;
  const time = now ? () => now().toISOString() : isoNow;

  /**
   * A logger with bound fields. The bound fields are serialized once, when the logger is made (a request's
   * logger writes an access line per request), and each record is the line's head, that text, and the call's
   * fields. Records whose fields would replace a bound or leading key, or hold an Error or a BigInt, take the
   * general path: one object `{ time, level, msg, ...bound, ...fields }` serialized whole — same output.
   */
  const make = (base: LogFields): Logger => {
    const keys = Object.keys(base);
    const boundText = keys.some((key) => RECORD_KEYS.has(key)) ? null : innerJson(base);
    const bound = boundText === null || boundText === "" ? "" : `,${boundText}`;
    const general = (level: LogLevel, msg: string, fields?: LogFields): string => {
      const record = { time: time(), level, msg, ...base, ...(fields ? normalize(fields) : {}) };
      return safeStringify(record);
    };
    const format = (level: LogLevel, msg: string, fields?: LogFields): string => {
      if (boundText === null) return general(level, msg, fields);
      let extra = "";
      if (fields) {
        for (const key of Object.keys(fields)) {
          const value = fields[key];
          if (value === undefined) continue; // dropped, as JSON.stringify drops it
          if (value instanceof Error || RECORD_KEYS.has(key) || Object.hasOwn(base, key)) {
            return general(level, msg, fields);
          }
        }
        const text = innerJson(fields);
        if (text === null) return general(level, msg, fields);
        if (text !== "") extra = `,${text}`;
      }
      return `{"time":"${time()}","level":"${level}","msg":${JSON.stringify(msg)}${bound}${extra}}`;
    };
    const write = (level: LogLevel, msg: string, fields?: LogFields) => {
      if (LEVEL_RANK[level] < threshold) return;
      sink(format(level, msg, fields));
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
