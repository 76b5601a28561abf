/* Placeholder so the build configures; being written now. */
