// Entry point of the `duet` command: parses the subcommand and maps duet::Error to exit codes.
#include <cstdio>

#include "duet/tensor/error.h"

int main(int, char**) {
  std::puts("duet: under construction");
  return 0;
}
