/*
 * state/migrations.h — the schema of the state database, one script per
 * version. Internal to the state module: store.c applies the scripts (each
 * in its own transaction together with the PRAGMA user_version bump) and
 * maps any SQLite error; this file only holds the text.
 */
#ifndef EM_STATE_MIGRATIONS_H
#define EM_STATE_MIGRATIONS_H

/* The value stored under meta key 'format' in every ember state database. */
#define EM_STATE_FORMAT "ember-state"

/*
 * Number of migrations, which is also the latest schema version. Any
 * thread; constant.
 */
int em_state_migration_count(void);

/*
 * The SQL script that takes a database from version - 1 to version
 * (1 <= version <= em_state_migration_count()); NULL outside that range.
 * The script does not touch user_version and opens no transaction. Any
 * thread; the string is static.
 */
const char *em_state_migration_sql(int version);

#endif /* EM_STATE_MIGRATIONS_H */
