"""SQLite as a nearspace store: the file is the truth (schema, migrations, atomic batch writes,
filters compiled to indexed SQL, change log); vector and keyword indexes are derived from it,
prove what they cover, and are rebuilt or caught up whenever they lag."""
