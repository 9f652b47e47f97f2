// A client that keeps cookies as a browser would, for black-box tests.

/** Fetches from one server, sending back the cookies it was given. */
export class Browser {
  readonly cookies: Map<string, string> = new Map();
  /** Every Set-Cookie header received, newest last. */
  readonly setCookies: string[] = [];

  constructor(readonly base: string) {}

  /** Requests `path` without following redirects and updates the cookie jar. */
  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0 && !headers.has("cookie")) {
      headers.set(
        "cookie",
        [...this.cookies].map(([name, value]) => `${name}=${value}`).join("; "),
      );
    }
    const response = await fetch(this.base + path, { ...init, headers, redirect: "manual" });
    for (const line of response.headers.getSetCookie()) {
      this.setCookies.push(line);
      const [pair = "", ...attributes] = line.split(";");
      const equals = pair.indexOf("=");
      const name = pair.slice(0, equals).trim();
      const value = pair.slice(equals + 1).trim();
      const maxAge = attributes.map((a) => a.trim()).find((a) => /^max-age=/i.test(a));
      if (maxAge !== undefined && Number(maxAge.split("=")[1]) <= 0) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }

  /** GETs `path` and returns the body text with the response. */
  async text(path: string, init: RequestInit = {}): Promise<{ response: Response; body: string }> {
    const response = await this.fetch(path, init);
    return { response, body: await response.text() };
  }
}
