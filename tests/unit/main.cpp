// The Catch2 v2 runner, compiled once into its own static library.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
