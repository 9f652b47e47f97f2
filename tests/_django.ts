// Real Django for tests: Debian's python3-django (Django 3.2) and
// python3-psycopg2, installed with apt-get when missing, run by the system
// python3. startDjango() serves the project in fixtures/django_app/ (its
// settings come from the environment) with the standard library's WSGI
// server on 127.0.0.1 and a port the OS picks, and stops it by its pid.
// djangoCodec() asks Django to encode and decode session_data.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { getSession, type SessionStore, withSessions } from "../mod.ts";

/** The interpreter whose Django is Debian's python3-django. */
export const PYTHON = "/usr/bin/python3";
const APP = fileURLToPath(new URL("./fixtures/django_app/", import.meta.url));
const START_TIMEOUT_MS = 60_000;

/** The environment the Django project takes its settings from. */
export interface DjangoSettings {
  /** Django's SECRET_KEY: Tessera's `secret`. */
  SECRET_KEY: string;
  /** `file`, `db`, `cached_db`, `signed_cookies`, or a dotted path. */
  SESSION_ENGINE: string;
  /** The file engine's directory. */
  SESSION_FILE_PATH?: string;
  /** @default {"sessionid"} */
  SESSION_COOKIE_NAME?: string;
  /** Seconds, as a string. */
  SESSION_COOKIE_AGE?: string;
  /** `sqlite3` or `postgresql`; without it Django has no database. */
  DB_ENGINE?: string;
  /** The SQLite file, or the PostgreSQL database. */
  DB_NAME?: string;
  DB_HOST?: string;
  DB_PORT?: string;
  DB_USER?: string;
  DB_PASSWORD?: string;
}

/** A Django server this process started. */
export interface DjangoServer {
  readonly url: string;
  readonly pid: number;
  /** What Django wrote to stderr so far (security warnings, tracebacks). */
  readonly stderr: () => string;
  /** Stops the server (SIGTERM to its pid) and waits until it has exited. */
  stop(): Promise<void>;
}

let installed: string | undefined;

function djangoVersion(): string | null {
  const result = spawnSync(
    PYTHON,
    ["-c", "import django, psycopg2; print(django.get_version())"],
    { encoding: "utf8", timeout: 60_000 },
  );
  return result.status === 0 ? result.stdout.trim() : null;
}

/**
 * Installs python3-django and python3-psycopg2 with apt-get unless the
 * system python3 has them, and returns Django's version.
 */
export function ensureDjango(): string {
  if (installed !== undefined) return installed;
  let version = djangoVersion();
  if (version === null) {
    // Another apt-get may hold the lock: wait for it rather than fail.
    const apt = (args: string[]) =>
      spawnSync("apt-get", ["-o", "DPkg::Lock::Timeout=600", ...args], {
        stdio: ["ignore", "ignore", "inherit"],
        timeout: 900_000,
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      });
    const packages = ["python3-django", "python3-psycopg2"];
    apt(["install", "-y", "-qq", "--no-install-recommends", ...packages]);
    version = djangoVersion();
    if (version === null) {
      apt(["update", "-qq"]);
      apt(["install", "-y", "-qq", "--no-install-recommends", ...packages]);
      version = djangoVersion();
    }
    if (version === null) {
      throw new Error(
        "Cannot run Django as python3-django or python3-psycopg2 is missing and 'apt-get install -y python3-django python3-psycopg2' failed",
      );
    }
  }
  installed = version;
  return version;
}

/** Runs `manage.py` of the project with `settings`, and throws if it fails. */
export function manage(settings: DjangoSettings, args: string[]): string {
  ensureDjango();
  const result = spawnSync(PYTHON, ["manage.py", ...args], {
    cwd: APP,
    env: { ...process.env, ...settings, PYTHONDONTWRITEBYTECODE: "1" },
    encoding: "utf8",
    timeout: 120_000,
  });
  if (result.status !== 0) {
    throw new Error(`Cannot run manage.py ${args.join(" ")}: ${result.stderr}`);
  }
  return result.stdout;
}

/**
 * Starts the Django project with `settings`. With the db or cached_db
 * engine, `migrate` runs first, so that Django creates django_session itself.
 */
export async function startDjango(settings: DjangoSettings): Promise<DjangoServer> {
  ensureDjango();
  if (/(^|\.)(db|cached_db)$/.test(settings.SESSION_ENGINE)) {
    manage(settings, ["migrate", "--noinput"]);
  }
  const child: ChildProcess = spawn(PYTHON, ["serve.py"], {
    cwd: APP,
    env: { ...process.env, ...settings, PYTHONUNBUFFERED: "1", PYTHONDONTWRITEBYTECODE: "1" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stderr!.setEncoding("utf8").on("data", (text: string) => (stderr += text));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill();
      reject(new Error(`Cannot start Django within ${START_TIMEOUT_MS} ms: ${stderr}`));
    }, START_TIMEOUT_MS);
    child.stdout!.setEncoding("utf8").on("data", (text: string) => {
      stdout += text;
      const match = /listening on (\d+)/.exec(stdout);
      if (match !== null) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`Cannot start Django: it exited with ${code}: ${stderr}`));
    });
  });
  const pid = child.pid!;
  return {
    url: `http://127.0.0.1:${port}`,
    pid,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(pid, "SIGTERM");
        await exited;
      }
    },
  };
}

/** A case for {@link djangoCodec}; see fixtures/django_app/session_codec.py. */
export type CodecCase =
  | { op: "encode" | "legacy"; secret: string; data: Record<string, unknown> }
  | { op: "decode"; secret: string; session_data: string; cookie_age?: number }
  | {
    op: "file";
    secret: string;
    session_data: string;
    index: number;
    age: number;
    cookie_age: number;
  };

/** What Django answered to one {@link CodecCase}. */
export interface CodecOutcome {
  session_data?: string;
  value?: Record<string, unknown>;
  warnings?: string[];
  expiry_age?: number | string | { error: string };
  expired?: boolean;
  error?: string;
}

/** Runs `cases` through Django in one process; the outcomes are in order. */
export function djangoCodec(cases: CodecCase[]): { django: string; outcomes: CodecOutcome[] } {
  ensureDjango();
  const result = spawnSync(PYTHON, ["session_codec.py"], {
    cwd: APP,
    input: JSON.stringify(cases),
    encoding: "utf8",
    timeout: 120_000,
  });
  if (result.status !== 0) {
    throw new Error(`session_codec.py failed (${result.status}): ${result.stderr}`);
  }
  return JSON.parse(result.stdout) as { django: string; outcomes: CodecOutcome[] };
}

/** What both the Django project's views and {@link tesseraTwin} answer: the session. */
export interface SessionState {
  key_set: boolean;
  data: Record<string, unknown>;
  expiry_age: number;
}

/**
 * A Tessera handler with the routes of the Django project's views
 * (fixtures/django_app/tessera_check/views.py), answering as they do, on
 * `store` with `secret` and `cookieName`.
 */
export function tesseraTwin(
  store: SessionStore,
  options: { secret: string; cookieName: string; cookieAge?: number },
): (req: Request) => Promise<Response> {
  return withSessions(async (req) => {
    const url = new URL(req.url);
    const session = await getSession(req);
    switch (url.pathname) {
      case "/set":
        for (const [name, value] of url.searchParams) session.set(name, value);
        break;
      case "/login":
        // What django.contrib.auth.login() does to the session.
        await session.cycleKey();
        session.set("_auth_user_id", url.searchParams.get("user") ?? "42");
        session.set("_auth_user_backend", "django.contrib.auth.backends.ModelBackend");
        session.set("_auth_user_hash", url.searchParams.get("hash") ?? DEFAULT_AUTH_HASH);
        break;
      case "/flush":
        await session.flush();
        break;
      case "/expire":
        session.setExpiry(Number(url.searchParams.get("seconds")));
        break;
      case "/get":
        break;
      default:
        return new Response("not found", { status: 404 });
    }
    const state: SessionState = {
      key_set: session.sessionKey !== null,
      data: Object.fromEntries(session.items()),
      expiry_age: session.getExpiryAge(),
    };
    return Response.json(state);
  }, {
    store,
    secret: options.secret,
    cookieName: options.cookieName,
    ...(options.cookieAge === undefined ? {} : { cookieAge: options.cookieAge }),
  });
}

/** The `_auth_user_hash` the login views keep unless given one. */
export const DEFAULT_AUTH_HASH = "5f2b4e1c9a0d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f";
