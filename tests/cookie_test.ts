import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  deletionCookie,
  formatAttributes,
  readCookie,
  sessionCookie,
  varyWithCookie,
} from "../src/cookie.ts";

describe("readCookie()", () => {
  it("finds the named cookie among others", () => {
    assert.equal(readCookie("a=1; sessionid=abc; b=2", "sessionid"), "abc");
    assert.equal(readCookie("sessionid=abc", "sessionid"), "abc");
    assert.equal(readCookie("a=1;sessionid=abc;b=2", "sessionid"), "abc");
  });

  it("gives undefined when the header or the cookie is missing", () => {
    assert.equal(readCookie(null, "sessionid"), undefined);
    assert.equal(readCookie("", "sessionid"), undefined);
    assert.equal(readCookie("a=1; b=2", "sessionid"), undefined);
  });

  it("does not match a cookie whose name only contains the name", () => {
    assert.equal(readCookie("xsessionid=abc; sessionidx=def", "sessionid"), undefined);
  });

  it("keeps the first of duplicated cookies", () => {
    assert.equal(readCookie("sessionid=first; sessionid=second", "sessionid"), "first");
  });

  it("gives an empty value as empty and strips double quotes", () => {
    assert.equal(readCookie("sessionid=", "sessionid"), "");
    assert.equal(readCookie('sessionid=""', "sessionid"), "");
    assert.equal(readCookie('sessionid="abc"', "sessionid"), "abc");
  });

  it("ignores pairs without '=' and keeps '=' inside values", () => {
    assert.equal(readCookie("flag; sessionid=a=b", "sessionid"), "a=b");
  });
});

describe("sessionCookie() and deletionCookie()", () => {
  const attributes = formatAttributes({
    domain: undefined,
    path: "/",
    secure: false,
    httpOnly: true,
    sameSite: "Lax",
  });

  it("sets Max-Age and a matching Expires", () => {
    const header = sessionCookie("sessionid", "k".repeat(32), 3600, attributes);
    const match =
      /^sessionid=k{32}; Expires=([^;]+); Max-Age=3600; Path=\/; HttpOnly; SameSite=Lax$/
        .exec(header);
    assert.ok(match, header);
    const expires = Date.parse(match[1]!);
    assert.ok(Math.abs(expires - (Date.now() + 3_600_000)) < 2000);
  });

  it("omits Max-Age and Expires for a browser-session cookie", () => {
    assert.equal(
      sessionCookie("sessionid", "abc", null, attributes),
      "sessionid=abc; Path=/; HttpOnly; SameSite=Lax",
    );
  });

  it("sends a negative age as 0", () => {
    assert.match(sessionCookie("sessionid", "abc", -10, attributes), /Max-Age=0;/);
  });

  it("caps an age that would end after the year 9999, never sending 'Expires=Invalid Date'", () => {
    // A tampered stored expiry or setExpiry(Number.MAX_SAFE_INTEGER) asks for this.
    for (const age of [Number.MAX_SAFE_INTEGER, 8_640_000_000_000, 300_000_000_000]) {
      const header = sessionCookie("sessionid", "abc", age, attributes);
      const match = /; Expires=([^;]+); Max-Age=(\d+);/.exec(header);
      assert.ok(match, header);
      assert.match(match[1]!, /^Fri, 31 Dec 9999 23:59:5\d GMT$/);
      const end = Date.parse(match[1]!);
      assert.ok(Math.abs(Date.now() + Number(match[2]) * 1000 - end) < 2000, header);
    }
  });

  it("deletes with the same path, domain and SameSite (Django test_session_delete_on_end)", () => {
    assert.equal(
      deletionCookie(
        "sessionid",
        formatAttributes({
          domain: ".example.local",
          path: "/example/",
          secure: false,
          httpOnly: false,
          sameSite: "Lax",
        }),
      ),
      "sessionid=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Domain=.example.local; Path=/example/; SameSite=Lax",
    );
  });
});

describe("varyWithCookie()", () => {
  it("adds Cookie to an absent or other Vary", () => {
    assert.equal(varyWithCookie(null), "Cookie");
    assert.equal(varyWithCookie("Accept-Encoding"), "Accept-Encoding, Cookie");
  });

  it("leaves a Vary that already covers Cookie", () => {
    assert.equal(varyWithCookie("cookie"), "cookie");
    assert.equal(varyWithCookie("Accept, Cookie"), "Accept, Cookie");
    assert.equal(varyWithCookie("*"), "*");
  });
});
