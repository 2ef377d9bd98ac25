from melodygen.cli import main

raise SystemExit(main())
