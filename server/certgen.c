/* Placeholder so the build configures; being written now. */
#include "server/certgen.h"
