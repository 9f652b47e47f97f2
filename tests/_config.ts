// Session configuration for tests that use a Session without a server.

import { JSON_SERIALIZER, type Logger, type SessionConfig, type SessionStore } from "../mod.ts";

/** A logger that keeps what it is told, for assertions. */
export class RecordingLogger implements Logger {
  readonly warnings: string[] = [];
  readonly errors: { message: string; error: unknown }[] = [];
  warn(message: string): void {
    this.warnings.push(message);
  }
  error(message: string, error?: unknown): void {
    this.errors.push({ message, error });
  }
}

/** A session configuration on `store` with Django's defaults. */
export function sessionConfig(
  store: SessionStore,
  overrides: Partial<SessionConfig> = {},
): SessionConfig {
  return {
    store,
    cookieAge: 1_209_600,
    expireAtBrowserClose: false,
    serializer: JSON_SERIALIZER,
    logger: new RecordingLogger(),
    ...overrides,
  };
}
