from consentry.cli import main

main()
