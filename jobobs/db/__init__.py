"""The database: its schema, the store that opens and writes it, the ledger of the jobs a
runtime handles, checkpoint steps, SQL quoting, Quack connections and the files on disk."""
