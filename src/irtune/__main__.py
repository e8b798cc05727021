from irtune.cli.app import main

main()
