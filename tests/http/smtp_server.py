# SPDX-License-Identifier: ISC
"""An SMTP server on loopback for tests/http/smtp.test.mjs (aiosmtpd).

It requires STARTTLS (unless --no-tls) and AUTH LOGIN/PLAIN with one user
and password, writes each message it accepts to OUT/N.json (envelope and
data) and each AUTH attempt to OUT/auth.log, and prints "PORT n" once it
listens. It runs until it is sent SIGTERM.
"""
import argparse
import asyncio
import json
import os
import signal
import ssl

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--no-tls", action="store_true")
    a = ap.parse_args()
    seq = [0]

    def log_auth(line):
        with open(os.path.join(a.out, "auth.log"), "a") as f:
            f.write(line + "\n")

    def authenticator(server, session, envelope, mechanism, data):
        ok = (isinstance(data, LoginPassword) and
              data.login == a.user.encode() and data.password == a.password.encode())
        log_auth("%s %s tls=%s" % (mechanism, "ok" if ok else "bad",
                                   session.ssl is not None))
        # handled=False: smtp_AUTH itself answers 535 on a failure.
        return AuthResult(success=ok, handled=False, auth_data=data)

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            seq[0] += 1
            rec = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                   "tls": session.ssl is not None,
                   "authenticated": session.authenticated,
                   "data": envelope.original_content.decode("utf-8", "replace")}
            tmp = os.path.join(a.out, ".%d.tmp" % seq[0])
            with open(tmp, "w") as f:
                json.dump(rec, f)
            os.rename(tmp, os.path.join(a.out, "%d.json" % seq[0]))
            return "250 OK"

    ctx = None
    if not a.no_tls:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.cert, a.key)

    def factory():
        return SMTP(Handler(), hostname="127.0.0.1", tls_context=ctx,
                    require_starttls=ctx is not None,
                    authenticator=authenticator, auth_required=True,
                    auth_require_tls=ctx is not None)

    async def run():
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        srv = await loop.create_server(factory, "127.0.0.1", 0)
        print("PORT %d" % srv.sockets[0].getsockname()[1], flush=True)
        await stop
        srv.close()
        await srv.wait_closed()

    asyncio.run(run())


if __name__ == "__main__":
    main()
