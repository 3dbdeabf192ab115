from dictation.cli.main import main

raise SystemExit(main())
