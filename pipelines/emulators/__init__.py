"""Local emulators of enterprise social network APIs, for tests, benchmarks and `esn demo --via <api>`.

Each emulator is a real HTTP server on 127.0.0.1 serving an organisation from the demo generator in the
platform's documented shapes, with its rate limits, errors and injectable faults. Emulators must never
listen on a public interface or be used as a source of truth about the real platforms' behaviour
beyond what `API_FORMATS.md` documents.
"""
