/* Placeholder so the build configures; being written now. */
#include "keystore/keystore.h"
