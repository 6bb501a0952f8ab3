// Mail for the demo: a local SMTP server (smtp-server) on 127.0.0.1 that keeps every message it
// receives in a mailbox shown at /mail, and the nodemailer transport twofa's mailer sends through.
// The mail really goes over SMTP, as it would to a real relay; only the relay is in this process.

import { simpleParser } from "mailparser";
import nodemailer from "nodemailer";
import { SMTPServer } from "smtp-server";

const MAX_MESSAGES = 500;
const MAX_MESSAGE_BYTES = 1024 * 1024;

/** The messages the local SMTP server received, newest first. */
export class Mailbox {
  #messages = [];
  #next = 1;

  /** Keeps a parsed message (mailparser's result). */
  add(mail) {
    this.#messages.unshift({
      id: this.#next++,
      from: mail.from?.text ?? "",
      to: mail.to?.text ?? "",
      subject: mail.subject ?? "",
      text: mail.text ?? "",
      html: typeof mail.html === "string" ? mail.html : "",
      date: (mail.date ?? new Date()).toISOString(),
    });
    this.#messages.length = Math.min(this.#messages.length, MAX_MESSAGES);
  }

  /** Copies of the messages, newest first. */
  list() {
    return this.#messages.map((m) => ({ ...m }));
  }
}

/**
 * Starts an SMTP server on 127.0.0.1:`port` (0: a free port) delivering into `mailbox`.
 * A message is parsed and stored before the server answers the DATA command, so by the time
 * twofa's call that sent it returns, it is in the mailbox.
 * @returns {Promise<{port: number, close(): Promise<void>}>}
 */
export async function startSmtpServer(mailbox, port = 0, log = console) {
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    size: MAX_MESSAGE_BYTES,
    logger: false,
    onData(stream, _session, done) {
      simpleParser(stream).then(
        (mail) => {
          if (stream.sizeExceeded) return done(Object.assign(new Error("message too large"), { responseCode: 552 }));
          mailbox.add(mail);
          done();
        },
        (error) => {
          log.error("SMTP: could not parse a message:", error);
          done(error);
        },
      );
    },
  });
  server.on("error", (error) => log.error("SMTP server error:", error.message));
  await new Promise((resolve, reject) => {
    server.server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  return {
    port: server.server.address().port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * twofa's mailer: delivers `{to, subject, text, html}` over SMTP to 127.0.0.1:`port` as
 * multipart/alternative. A rejection makes twofa report `mail` for a code (the code is never
 * usable) and list the failure in `notices.failed` for a security notice.
 */
export function smtpMailer({ port, host = "127.0.0.1", from }, log = console) {
  const transport = nodemailer.createTransport({
    host,
    port,
    secure: false,
    ignoreTLS: true,
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 10_000,
  });
  const send = async ({ to, subject, text, html }) => {
    try {
      await transport.sendMail({ from, to, subject, text, html });
    } catch (error) {
      log.warn(`SMTP delivery to ${host}:${port} failed: ${error.message}`);
      throw error;
    }
  };
  send.close = () => transport.close();
  return send;
}
