"""The schema of the database the log and the answer cache share, as numbered steps.

`PRAGMA user_version` counts the steps a database has had. Append steps, never change one, and
keep them additive (new tables, new nullable columns): a database written by an older or a newer
release then keeps working with this one.
"""

from __future__ import annotations

#: The answer cache's table; exported cache files hold it alone.
ANSWERS_TABLE = """CREATE TABLE IF NOT EXISTS answers (
    key TEXT PRIMARY KEY, model TEXT NOT NULL, resolved_model TEXT, datetime_utc TEXT NOT NULL,
    input_tokens INTEGER, output_tokens INTEGER, answer TEXT NOT NULL)"""

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 1: the log as the first releases created it (a no-op on their databases)
        """CREATE TABLE IF NOT EXISTS responses (
            id TEXT PRIMARY KEY, model TEXT NOT NULL, status TEXT NOT NULL, error TEXT,
            prompt TEXT, system TEXT, options TEXT, text TEXT, input_tokens INTEGER,
            output_tokens INTEGER, usage_details TEXT, duration_ms INTEGER, datetime_utc TEXT,
            conversation_id TEXT, attachments TEXT)""",
        "CREATE INDEX IF NOT EXISTS responses_datetime ON responses (datetime_utc)",
    ),
    (  # 2: time to first token
        "ALTER TABLE responses ADD COLUMN first_chunk_ms INTEGER",
    ),
    (  # 3: the answer cache: whole finished answers by the hash of the request that made them
        ANSWERS_TABLE,
    ),
    (  # 4: what the current plugin contract adds to a response: the model that really answered,
       # parts other than plain text (reasoning, tool calls), the calls asked for, the results
       # sent, and where a replayed answer came from
        "ALTER TABLE responses ADD COLUMN resolved_model TEXT",
        "ALTER TABLE responses ADD COLUMN parts TEXT",
        "ALTER TABLE responses ADD COLUMN tool_calls TEXT",
        "ALTER TABLE responses ADD COLUMN tool_results TEXT",
        "ALTER TABLE responses ADD COLUMN replayed TEXT",
    ),
)
