export { type OptionSpec, type OptionTable, type OptionValues, parseOptions } from './cli/options.js';
export { closestMatch } from './cli/suggest.js';
export {
  EXIT_USAGE,
  formatUsageError,
  oneOf,
  parseCommandLine,
  reportUsageError,
  UsageError,
  type UsageErrorDetails,
  unknownCommand,
} from './cli/usage.js';
export { BodyTooLargeError, ClientAbortedError, readBody } from './http/read-body.js';
export { createLineWriter, type LineWriter, type LineWriterOptions } from './log/line-writer.js';
export {
  createLogger,
  isLogLevel,
  jsonLineSink,
  LOG_LEVELS,
  type Logger,
  type LogLevel,
  type LogRecord,
  type LogSink,
  levelEnabled,
  levelLabel,
  prettySink,
  silentSink,
} from './log/logger.js';
export { fixedPortAgent } from './net/fixed-port-agent.js';
export { type ListenTarget, listen, PortError } from './net/listen.js';
export { type ReadyInfo, removeReadyFile, writeReadyFile } from './process/ready-file.js';
export { type LatencySummary, percentile, summarizeLatencies } from './stats/latency.js';
