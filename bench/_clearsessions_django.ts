// clearsessions in Django's file format (`clearsessions_bench.ts --format
// django`): FileStore({ format: "django" })'s sweep against Django's own
// `manage.py clearsessions` with the file engine (Django 3.2, Debian's
// python3-django, the project in tests/fixtures/django_app/), each on its own
// copy of the same files, each going first in turn.
//
// The files are Django's: named sessionid + key, holding signed,
// compressed session_data, their mtime the last save. Half were saved a day
// ago (live), half SESSION_COOKIE_AGE and a day ago (expired, no custom
// expiry). Django's clearsessions opens and decodes every file; FileStore's
// sweep judges the young half with one lstat each and reads and decodes only
// the files past their age. Django's figure is the command's wall time, and
// also that time less the start of the command on an empty directory
// (Python, Django's setup), which is paid once per run whatever the files.

import { mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import process from "node:process";
import { join } from "node:path";
import { FileStore } from "../src/stores/file.ts";
import { encodeDjangoSession } from "../src/stores/_django_format.ts";
import { ensureDjango, manage } from "../tests/_django.ts";
import type { Place } from "./_plan.ts";

const SECRET = "bench-clearsessions-django-secret-key-0123456789";
const COOKIE_AGE = 1_209_600;
const DAY = 86_400_000;
const VARIANTS = 64;

/** What `--format django` was given. */
export interface DjangoFormatBench {
  sizes: number[];
  repeat: number;
  places: Place[];
  runtime: string;
}

async function writeSessions(
  dir: string,
  count: number,
  payloads: string[],
): Promise<void> {
  mkdirSync(dir);
  const now = Date.now();
  for (let i = 0; i < count; i++) {
    const file = join(dir, `sessionid${i.toString(36).padStart(32, "0")}`);
    writeFileSync(file, payloads[i % payloads.length]!, { mode: 0o600 });
    const saved = (now - (i % 2 === 0 ? COOKIE_AGE * 1000 + DAY : DAY)) / 1000;
    utimesSync(file, saved, saved);
    if (i % 5000 === 4999) await Promise.resolve();
  }
}

function djangoSettings(dir: string) {
  return {
    SECRET_KEY: SECRET,
    SESSION_ENGINE: "file",
    SESSION_FILE_PATH: dir,
    SESSION_COOKIE_NAME: "sessionid",
    SESSION_COOKIE_AGE: String(COOKIE_AGE),
  };
}

function expectLeft(label: string, dir: string, kept: number): void {
  const left = readdirSync(dir).length;
  if (left !== kept) {
    throw new Error(`${label} left ${left} files: expected ${kept}`);
  }
}

async function tesseraSweep(dir: string, kept: number): Promise<number> {
  const store = new FileStore({ path: dir, format: "django" });
  store.configure({
    cookieName: "sessionid",
    cookieAge: COOKIE_AGE,
    secrets: [SECRET],
    logger: console,
  });
  const start = performance.now();
  const report = await store.sweep();
  const ms = performance.now() - start;
  if (report.failed > 0 || report.kept !== kept) {
    throw new Error(
      `FileStore's sweep kept ${report.kept}, failed ${report.failed}`,
    );
  }
  expectLeft("FileStore's sweep", dir, kept);
  return ms;
}

function djangoSweep(dir: string, kept: number): number {
  const start = performance.now();
  manage(djangoSettings(dir), ["clearsessions"]);
  const ms = performance.now() - start;
  expectLeft("Django's clearsessions", dir, kept);
  return ms;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[values.length >> 1]!;

/** Runs the comparison and prints one line per sweep and a summary. */
export async function benchDjangoFormat(
  options: DjangoFormatBench,
): Promise<void> {
  const django = ensureDjango();
  const payloads: string[] = [];
  for (let i = 0; i < VARIANTS; i++) {
    payloads.push(
      await encodeDjangoSession(
        JSON.stringify({
          _auth_user_id: String(1000 + i),
          _auth_user_backend: "django.contrib.auth.backends.ModelBackend",
          _auth_user_hash: (i.toString(16).padStart(2, "0")).repeat(32),
          cart: Array.from(
            { length: i % 5 },
            (_, n) => ({ sku: `item-${n}`, qty: n + 1 }),
          ),
        }),
        [SECRET],
      ),
    );
  }
  const load = () => loadavg().map((n) => n.toFixed(2)).join(" ");
  console.log(
    `clearsessions in Django's file format on ${options.runtime}, against Django ${django}'s manage.py clearsessions; load average ${load()}\n`,
  );
  const rows: string[] = [];
  for (const place of options.places) {
    const root = join(place.dir, `tessera-bench-djfile-${process.pid}`);
    mkdirSync(root, { recursive: true });
    try {
      const emptyDir = join(root, "empty");
      mkdirSync(emptyDir);
      const startup = median([0, 1, 2].map(() => djangoSweep(emptyDir, 0)));
      for (const files of options.sizes) {
        const kept = Math.floor(files / 2);
        const tessera: number[] = [];
        const djangoMs: number[] = [];
        for (let r = 0; r < options.repeat; r++) {
          const order = r % 2 === 0 ? ["tessera", "django"] : ["django", "tessera"];
          for (const who of order) {
            const dir = join(root, `${who}-${files}-${r}`);
            await writeSessions(dir, files, payloads);
            if (who === "tessera") tessera.push(await tesseraSweep(dir, kept));
            else djangoMs.push(djangoSweep(dir, kept));
            rmSync(dir, { recursive: true, force: true });
          }
          console.log(
            `${place.name.padEnd(6)} ${String(files).padEnd(7)} round ${r + 1}: FileStore ${
              tessera.at(-1)!.toFixed(0)
            } ms, Django ${djangoMs.at(-1)!.toFixed(0)} ms (${
              (djangoMs.at(-1)! - startup).toFixed(0)
            } ms less its start); load ${load()}`,
          );
        }
        const t = median(tessera);
        const d = median(djangoMs);
        rows.push(
          `| ${place.name} | ${files} | ${t.toFixed(0)} | ${d.toFixed(0)} | ${
            (d - startup).toFixed(0)
          } | ${(t / d).toFixed(2)} | ${(t / (d - startup)).toFixed(2)} |`,
        );
      }
      rows.push(
        `| ${place.name} | (Django's start, empty directory) | | ${startup.toFixed(0)} | | | |`,
      );
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  console.log(
    `\nMedians of ${options.repeat} round(s), half of the files expired; load average at the end ${load()}\n`,
  );
  console.log(
    "| place | files | FileStore ms | Django ms | Django ms less its start | FileStore / Django | FileStore / Django less start |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const row of rows) console.log(row);
}
