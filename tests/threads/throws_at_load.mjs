// A task module that throws while it loads: every call of a ThreadPool on it
// rejects with this error, and nothing hangs.
export class ConfigError extends Error {
  constructor(message) {
    super(message);
    this.name = "ConfigError";
    this.code = "E_CONFIG";
  }
}

throw new ConfigError("the task module cannot load: no config");

export function never() {
  return "unreachable";
}
