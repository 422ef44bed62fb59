// A progress bar on stderr: redrawn in place on a terminal, a line per tenth otherwise (CI logs).

const WIDTH = 20;

export type Progress = {
  update(label: string, done: number, total: number, unit: string): void;
  /** A line of its own, above the bar. */
  note(message: string): void;
  end(): void;
};

export function createProgress(stream: NodeJS.WriteStream = process.stderr): Progress {
  let drawn = false;
  let lastTenth = -1;
  let lastLabel = '';
  const clear = () => {
    if (drawn) stream.write('\r\x1b[2K');
    drawn = false;
  };
  return {
    update(label, done, total, unit) {
      const fraction = total === 0 ? 1 : Math.min(1, done / total);
      const filled = Math.round(fraction * WIDTH);
      const line = `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}%  ${label}: ${done}/${total} ${unit}`;
      if (stream.isTTY) {
        clear();
        stream.write(line);
        drawn = true;
        return;
      }
      const tenth = Math.floor(fraction * 10);
      if (label !== lastLabel || tenth !== lastTenth) stream.write(`${line}\n`);
      [lastLabel, lastTenth] = [label, tenth];
    },
    note(message) {
      clear();
      stream.write(`${message}\n`);
    },
    end: clear,
  };
}
