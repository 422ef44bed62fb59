import type { Logger } from 'pino';

// Customer e-mail goes through this adapter. The default writes the message to the log (and the step
// records it in the notifications table); a real transport (SES, SMTP) implements the same method.

export type MailMessage = { to: string; subject: string; body: string };
export type Mailer = { send(message: MailMessage): Promise<void> };

export function createLogMailer(log: Logger): Mailer {
  return {
    async send(message) {
      log.info({ mail: { to: message.to, subject: message.subject } }, 'mail sent');
    },
  };
}
