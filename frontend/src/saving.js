// Saving what the user typed or drew: debounced autosave, automatic retry of transient
// failures (network, 5xx), and a visible status line that shows the API's own message
// with a retry button. The save function reads the current values each time it runs,
// so nothing typed is lost while a save fails or waits.

const RETRY_DELAYS_MS = [1000, 3000, 8000, 15000];

/**
 * One thing to save (a call, an ROI, a pathology record).
 *
 * ``save()`` performs one attempt and returns the API's answer; ``status`` is an element
 * that shows "saving…", "saved" or the error (its ``data-state`` is idle / pending /
 * saving / saved / error, for tests and CSS).
 */
export class Saver {
  constructor({ save, status, delayMs = 800, label = '', onSaved = () => {}, onError = () => {} }) {
    this.save = save;
    this.status = status;
    this.delayMs = delayMs;
    this.label = label;
    this.onSaved = onSaved;
    this.onError = onError;
    this.timer = null;
    this.running = null;
    this.attempt = 0;
  }

  /** Save after ``delayMs`` of quiet (each call restarts the wait). */
  schedule() {
    clearTimeout(this.timer);
    this.show('pending', `${this.label}unsaved changes…`);
    this.timer = setTimeout(() => this.flush().catch(() => {}), this.delayMs);
  }

  /** Save now (waits for a save in flight, then saves the latest values); resolves with the answer, rejects with the error. */
  async flush() {
    clearTimeout(this.timer);
    if (this.running) {
      try {
        await this.running;
      } catch {
        // the next attempt below reports its own result
      }
    }
    this.running = this.attemptSave();
    try {
      return await this.running;
    } finally {
      this.running = null;
    }
  }

  async attemptSave() {
    this.show('saving', `${this.label}saving…`);
    try {
      const answer = await this.save();
      this.attempt = 0;
      this.show('saved', `${this.label}saved ${new Date().toLocaleTimeString()}`);
      this.onSaved(answer);
      return answer;
    } catch (error) {
      this.showError(error);
      this.onError(error);
      if (error.transient && this.attempt < RETRY_DELAYS_MS.length) {
        const wait = RETRY_DELAYS_MS[this.attempt];
        this.attempt += 1;
        this.timer = setTimeout(() => this.flush().catch(() => {}), wait);
      }
      throw error;
    }
  }

  show(state, text) {
    if (!this.status) return;
    this.status.dataset.state = state;
    this.status.replaceChildren(document.createTextNode(text));
  }

  showError(error) {
    if (!this.status) return;
    this.status.dataset.state = 'error';
    const message = document.createElement('span');
    message.className = 'error-message';
    const retrying = error.transient && this.attempt < RETRY_DELAYS_MS.length ? ' (retrying automatically)' : '';
    message.textContent = `${this.label}not saved: ${error.message}${retrying}. Your input is kept.`;
    const retry = document.createElement('button');
    retry.type = 'button';
    retry.className = 'retry';
    retry.textContent = 'Retry';
    retry.addEventListener('click', () => {
      this.attempt = 0;
      this.flush().catch(() => {});
    });
    this.status.replaceChildren(message, ' ', retry);
  }
}
