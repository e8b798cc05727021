from irtune.cli import main

main()
