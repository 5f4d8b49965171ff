"""The `nirc` subcommands, one module each (registered in nirc.cli.COMMANDS)."""
