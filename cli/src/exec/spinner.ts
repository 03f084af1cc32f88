/**
 * A one-line spinner on stderr while `hoop exec --wait` waits for an approver. On a terminal it
 * redraws in place; otherwise (logs, CI) it prints the line once.
 */
const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export class Spinner {
  private timer: NodeJS.Timeout | undefined;
  private frame = 0;

  constructor(private readonly stderr: NodeJS.WriteStream = process.stderr) {}

  start(text: string): void {
    this.stop();
    if (this.stderr.isTTY !== true) {
      this.stderr.write(`… ${text}\n`);
      return;
    }
    const draw = (): void => {
      this.stderr.write(`\r${FRAMES[this.frame++ % FRAMES.length]} ${text}`);
    };
    draw();
    this.timer = setInterval(draw, 100);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.stderr.write('\r\x1b[2K');
  }
}
