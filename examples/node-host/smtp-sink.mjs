// A local SMTP server for trying the host: accepts every message on 127.0.0.1:8025 (or the port
// given as the first argument) and prints its recipient, subject and plain text. Development
// only (it uses the devDependencies smtp-server and mailparser).
//
//   node smtp-sink.mjs [port]

import { simpleParser } from "mailparser";
import { SMTPServer } from "smtp-server";

const port = Number(process.argv[2] ?? 8025);
const server = new SMTPServer({
  authOptional: true,
  disabledCommands: ["STARTTLS"],
  logger: false,
  onData(stream, _session, done) {
    simpleParser(stream).then((mail) => {
      console.log(`--- to ${mail.to?.text}: ${mail.subject}\n${mail.text?.trim()}\n`);
      done();
    }, done);
  },
});
server.listen(port, "127.0.0.1", () => console.log(`SMTP sink on 127.0.0.1:${port}`));
process.once("SIGINT", () => server.close(() => process.exit(0)));
